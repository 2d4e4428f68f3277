import Foundation
import Imaging

/// The committed fixtures made by scripts/make_imaging_fixtures.py.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Entry: Decodable, Sendable {
        var reference: String
        var width: Int
        var height: Int
        var channels: Int
    }

    static let manifest: [String: Entry] = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode([String: Entry].self, from: data)
    }()

    static var decodeCases: [String] { manifest.keys.sorted() }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }
}
