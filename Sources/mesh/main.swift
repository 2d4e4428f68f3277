// `mesh`: the executable reads its process into the engine's settings; MeshCommands does the rest.
import Foundation
import MeshCommands
import Pipeline

MeshCommand.main(engine: EngineEnvironment(
    environment: ProcessInfo.processInfo.environment,
    executable: URL(fileURLWithPath: CommandLine.arguments.first ?? "mesh"),
    currentDirectory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)))
