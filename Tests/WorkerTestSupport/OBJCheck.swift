import Foundation

/// A minimal OBJ reader for tests: counts vertices and faces and checks every face index.
public struct OBJSummary: Sendable, Equatable {
    public var vertices: Int
    public var faces: Int

    /// Parses `text`; nil when a face names a missing vertex, a line is malformed, or there is no face.
    public init?(text: String) {
        var vertices = 0
        var faces: [[Int]] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ")
            guard let kind = fields.first else { continue }
            if kind == "v" {
                guard fields.count >= 4, fields[1...3].allSatisfy({ Double($0) != nil }) else { return nil }
                vertices += 1
            } else if kind == "f" {
                let indices = fields.dropFirst().map { Int($0.split(separator: "/").first ?? "") }
                guard indices.count >= 3, indices.allSatisfy({ $0 != nil }) else { return nil }
                faces.append(indices.map { $0! })
            }
        }
        guard !faces.isEmpty, faces.allSatisfy({ $0.allSatisfy { (1...vertices).contains($0) } }) else { return nil }
        self.vertices = vertices
        self.faces = faces.count
    }

    public init?(contentsOf url: URL) {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        self.init(text: text)
    }
}

/// Runs CPU-heavy synchronous test work (the engine, the mesher) on a thread of its own, so that
/// it does not hold one of the few threads of Swift's cooperative pool that the broker tests'
/// async code runs on (two, on a two-core machine).
public func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
