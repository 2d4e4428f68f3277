import ArgumentParser

/// `mesh`: photo in, 3D model out. Subcommands expose the engine's stages.
@main
struct MeshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Turn photos and volumes into 3D models.",
        subcommands: [VolumeCommand.self]
    )
}
