import Foundation
import Testing
@testable import DepthNet

/// The test fixtures made by Training/parity/make_fixtures.py.
enum Fixtures {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func file(_ relative: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: url(relative))
    }
}

extension SafeTensorsFile {
    /// A fixture tensor's values; fails the test if it is absent.
    func values(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Float] {
        try #require(try floats(name), "fixture tensor \(name) missing", sourceLocation: sourceLocation)
    }

    /// A fixture tensor as a ``Tensor``.
    func tensor(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Tensor {
        let entry = try #require(entries[name], "fixture tensor \(name) missing", sourceLocation: sourceLocation)
        return Tensor(shape: entry.shape, values: try values(name))
    }

    func shape(_ name: String) -> [Int] { entries[name]?.shape ?? [] }
}

/// Max |a − b| over all elements divided by the reference's range (max − min): the parity metric.
func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "sizes \(actual.count) vs \(expected.count)")
    guard let lo = expected.min(), let hi = expected.max() else { return 0 }
    var worst: Float = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        worst = d.isNaN ? .infinity : max(worst, d)
    }
    return worst / max(hi - lo, 1e-12)
}

/// Expects `actual` to match `expected` in shape and within `tolerance` relative to the range.
func expectClose(_ actual: Tensor, _ expected: [Float], shape: [Int], tolerance: Float = 1e-4,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.shape == shape, "\(label) shape", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let error = relativeError(actual.toArray(), expected)
    #expect(error <= tolerance, "\(label): relative error \(error)", sourceLocation: sourceLocation)
}
