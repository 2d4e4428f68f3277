import ArgumentParser
import Foundation
import Pipeline

/// `mesh`: photo in, 3D model out. Subcommands expose the engine's stages.
///
/// The `mesh` executable only reads its process (environment, executable path, current folder)
/// into an ``EngineEnvironment`` and calls ``main(_:engine:)``; tests call
/// ``run(_:engine:console:)`` in their own process.
public struct MeshCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Turn photos into 3D models (and mesh raw volumes).",
        subcommands: [PhotoCommand.self, VolumeCommand.self, NetworkCommand.self],
        defaultSubcommand: PhotoCommand.self
    )

    public init() {}

    /// Parses `arguments` (default: the process's), runs the subcommand they name and exits: 0 on
    /// success, the command's own code (65 bad input, 1 another failure), 64 for usage errors.
    public static func main(_ arguments: [String]? = nil, engine: EngineEnvironment) -> Never {
        do {
            try run(arguments ?? Array(CommandLine.arguments.dropFirst()), engine: engine, console: Console())
        } catch {
            exit(withError: error)
        }
        exit()
    }

    /// Parses `arguments` and runs the subcommand they name in this process, writing to `console`.
    /// - Throws: the parse error or the command's `ExitCode`; ``exitCode(for:)`` gives the status.
    public static func run(_ arguments: [String], engine: EngineEnvironment, console: Console) throws {
        var command = try parseAsRoot(arguments)
        if let subcommand = command as? any MeshSubcommand {
            try subcommand.run(engine: engine, console: console)
        } else {
            try command.run()
        }
    }
}

/// A subcommand of `mesh`: run with the engine's settings and a console, both given.
protocol MeshSubcommand: ParsableCommand {
    func run(engine: EngineEnvironment, console: Console) throws
}

/// Where a command's text goes: standard output and standard error, or kept as text (tests).
public final class Console {
    private let keeps: Bool
    /// What was printed to standard output (kept only by a capturing console).
    public private(set) var output = ""
    /// What was printed to standard error (kept only by a capturing console).
    public private(set) var errors = ""

    /// The process's standard output and error, or (`capturing`) two strings.
    public init(capturing: Bool = false) { keeps = capturing }

    func print(_ text: String) {
        if keeps { output += text + "\n" } else { Swift.print(text) }
    }

    func printError(_ text: String) {
        if keeps { errors += text + "\n" } else { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }
}
