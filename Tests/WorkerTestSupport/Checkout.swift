import Foundation

/// The source checkout the tests were built from, and what the tests read in it.
public enum Checkout {
    /// The repository root.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The bundled sample photos.
    public static let samples = root.appendingPathComponent("samples")
    /// The committed weights.
    public static let weights = root.appendingPathComponent("Weights")

    /// A fresh, empty scratch folder under the temporary directory (the caller removes it).
    public static func scratch(_ prefix: String = "myroom-tests") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The executables `swift build` put beside the test bundle (`.build/<triple>/<configuration>/`).
public enum BuiltProducts {
    /// The products folder: the one holding the running test bundle.
    public static var directory: URL? { Bundle.main.executableURL?.deletingLastPathComponent() }

    /// The built executable `name` (e.g. `mesh`).
    /// - Throws: ``Missing`` when it is not there (build the package first: `swift build --build-tests`).
    public static func executable(_ name: String) throws(Missing) -> URL {
        guard let url = directory?.appendingPathComponent(name), FileManager.default.isExecutableFile(atPath: url.path) else {
            throw Missing(name: name, directory: directory?.path ?? "(no test bundle path)")
        }
        return url
    }

    /// An executable that `swift build` did not leave beside the test bundle.
    public struct Missing: Error, CustomStringConvertible {
        public var name: String
        public var directory: String
        public var description: String { "\(name) is not built in \(directory): run `swift build --build-tests` first" }
    }
}
