import ArgumentParser

/// `mesh`: photo in, 3D model out. Subcommands expose the engine's stages.
@main
struct MeshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Turn photos into 3D models (and mesh raw volumes).",
        subcommands: [PhotoCommand.self, VolumeCommand.self, NetworkCommand.self],
        defaultSubcommand: PhotoCommand.self
    )
}
