import Foundation
import Imaging
import Testing
@testable import MeshIO
@testable import Meshing

/// A closed test mesh: an octahedron with normals, colours and UVs.
func octahedron() -> Mesh {
    let p: [SIMD3<Float>] = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    let t: [SIMD3<UInt32>] = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    var mesh = Mesh(positions: p, triangles: t)
    mesh.computeNormals()
    mesh.colors = p.map { ($0 + 1) / 2 }
    mesh.uvs = p.map { SIMD2(($0.x + 1) / 2, ($0.y + 1) / 2) }
    return mesh
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("meshio-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
}

@Suite("OBJ")
struct OBJTests {
    @Test("written then parsed back: same counts, positions, colours, normals and UVs")
    func roundTrip() throws {
        let mesh = octahedron()
        #expect(mesh.isClosedManifold)
        let back = try OBJReader.parse(OBJWriter.encode(mesh))
        #expect(back.vertexCount == mesh.vertexCount)
        #expect(back.triangleCount == mesh.triangleCount)
        #expect(back.triangles == mesh.triangles)
        for i in 0..<mesh.vertexCount {
            #expect(length(back.positions[i] - mesh.positions[i]) < 1e-6)
            #expect(length(back.colors![i] - mesh.colors![i]) < 1e-6)
            #expect(length(back.normals![i] - mesh.normals![i]) < 1e-6)
            #expect(abs(back.uvs![i].x - mesh.uvs![i].x) < 1e-6 && abs(back.uvs![i].y - mesh.uvs![i].y) < 1e-6)
        }
        #expect(back.isClosedManifold)
    }

    @Test("vertex colours are written as `v x y z r g b` and faces are 1-based")
    func textLayout() {
        var mesh = octahedron()
        mesh.normals = nil; mesh.uvs = nil
        let text = String(decoding: OBJWriter.encode(mesh), as: UTF8.self)
        #expect(text.contains("\nv 1 0 0 1 0.5 0.5\n"))
        #expect(text.contains("\nf 1 3 5\n"))
        #expect(!text.contains("vn ") && !text.contains("vt "))
    }

    @Test("a textured OBJ writes .png, .mtl with map_Kd, and the .obj naming them")
    func textured() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = Image(width: 4, height: 2, filledWith: [200, 100, 50])
        let files = try OBJWriter.write(octahedron(), to: dir.appendingPathComponent("model.obj"), texture: photo)
        #expect(files.map(\.lastPathComponent) == ["model.png", "model.mtl", "model.obj"])
        let mtl = try String(contentsOf: dir.appendingPathComponent("model.mtl"), encoding: .utf8)
        #expect(mtl.contains("map_Kd model.png"))
        let obj = try String(contentsOf: dir.appendingPathComponent("model.obj"), encoding: .utf8)
        #expect(obj.contains("mtllib model.mtl") && obj.contains("usemtl photo") && obj.contains("f 1/1/1 3/3/3 5/5/5"))
        let png = try ImageDecoder.decode(Array(Data(contentsOf: dir.appendingPathComponent("model.png"))))
        #expect(png.image.width == 4 && png.image.height == 2)
        let back = try OBJReader.read(dir.appendingPathComponent("model.obj"))
        #expect(back.triangleCount == 8 && back.vertexCount == 6)
        // Only the three files: no temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["model.mtl", "model.obj", "model.png"])
    }

    @Test("the reader handles polygons, relative indices, v//n and split vertices")
    func readerForms() throws {
        let text = """
        # a unit square as one quad, then a triangle with relative indices
        v 0 0 0
        v 1 0 0
        v 1 1 0
        v 0 1 0
        vn 0 0 1
        vt 0 0
        vt 1 1
        f 1//1 2//1 3//1 4//1
        f -4/1 -3/2 -2/2
        """
        let mesh = try OBJReader.parse(Array(text.utf8))
        #expect(mesh.triangleCount == 3)
        #expect(abs(mesh.surfaceArea - 1.5) < 1e-9)
        #expect(mesh.normals == nil || mesh.normals!.count == mesh.vertexCount)
    }

    @Test("malformed OBJ is rejected with its line number", arguments: [
        ("v 1 2\n", 1), ("v 0 0 0\nv 1 0 0\nf 1 2 3\n", 3), ("v 0 0 0\nf 1 1\n", 2), ("v a b c\n", 1),
    ])
    func malformed(text: String, line: Int) {
        #expect(throws: MeshIOError.self) { try OBJReader.parse(Array(text.utf8)) }
        do { _ = try OBJReader.parse(Array(text.utf8)) } catch {
            if case let .malformed(at, _) = error { #expect(at == line) } else { Issue.record("wrong error \(error)") }
        }
    }
}

@Suite("GLB and PLY")
struct GLBTests {
    /// Splits a GLB into its JSON document and binary chunk, checking the container byte by byte.
    func container(_ bytes: [UInt8]) throws -> (json: [String: Any], bin: [UInt8]) {
        #expect(bytes.count % 4 == 0)
        #expect(Array(bytes[0..<4]) == Array("glTF".utf8))
        #expect(u32(bytes, 4) == 2)
        #expect(Int(u32(bytes, 8)) == bytes.count)
        let jsonLength = Int(u32(bytes, 12))
        #expect(jsonLength % 4 == 0)
        #expect(Array(bytes[16..<20]) == Array("JSON".utf8))
        let jsonBytes = Array(bytes[20..<(20 + jsonLength)])
        let binHeader = 20 + jsonLength
        let binLength = Int(u32(bytes, binHeader))
        #expect(binLength % 4 == 0)
        #expect(Array(bytes[(binHeader + 4)..<(binHeader + 8)]) == [0x42, 0x49, 0x4E, 0x00])
        #expect(binHeader + 8 + binLength == bytes.count)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(jsonBytes)) as? [String: Any])
        return (json, Array(bytes[(binHeader + 8)...]))
    }

    @Test("header, chunk lengths, alignment and accessors check out byte by byte; data reads back")
    func vertexColoured() throws {
        let mesh = octahedron()
        let (json, bin) = try container(try GLBWriter.encode(mesh))
        let accessors = try #require(json["accessors"] as? [[String: Any]])
        let views = try #require(json["bufferViews"] as? [[String: Any]])
        let buffers = try #require(json["buffers"] as? [[String: Any]])
        #expect(buffers.first?["byteLength"] as? Int == bin.count)
        for view in views {
            let offset = try #require(view["byteOffset"] as? Int), length = try #require(view["byteLength"] as? Int)
            #expect(offset % 4 == 0)
            #expect(offset + length <= bin.count)
        }
        let primitive = try #require(((json["meshes"] as? [[String: Any]])?.first?["primitives"] as? [[String: Any]])?.first)
        let attributes = try #require(primitive["attributes"] as? [String: Int])
        #expect(Set(attributes.keys) == ["POSITION", "NORMAL", "COLOR_0", "TEXCOORD_0"])
        let position = accessors[attributes["POSITION"]!]
        #expect(position["count"] as? Int == mesh.vertexCount)
        #expect((position["min"] as? [Double]) == [-1, -1, -1])
        #expect((position["max"] as? [Double]) == [1, 1, 1])
        let indexAccessor = accessors[try #require(primitive["indices"] as? Int)]
        #expect(indexAccessor["count"] as? Int == mesh.triangleCount * 3)
        #expect(indexAccessor["componentType"] as? Int == 5125)
        // Positions and indices read back from the binary chunk.
        let pOff = views[position["bufferView"] as! Int]["byteOffset"] as! Int
        for i in 0..<mesh.vertexCount {
            let p = SIMD3<Float>((0..<3).map { Float(bitPattern: u32(bin, pOff + 12 * i + 4 * $0)) })
            #expect(p == mesh.positions[i])
        }
        let iOff = views[indexAccessor["bufferView"] as! Int]["byteOffset"] as! Int
        var triangles: [SIMD3<UInt32>] = []
        for t in 0..<mesh.triangleCount {
            triangles.append(SIMD3(u32(bin, iOff + 12 * t), u32(bin, iOff + 12 * t + 4), u32(bin, iOff + 12 * t + 8)))
        }
        #expect(triangles == mesh.triangles)
    }

    @Test("a textured GLB embeds the PNG and references it from the material")
    func textured() throws {
        var mesh = octahedron()
        mesh.colors = nil
        let photo = Image(width: 3, height: 5, filledWith: [10, 20, 30])
        let (json, bin) = try container(try GLBWriter.encode(mesh, texture: photo))
        let images = try #require(json["images"] as? [[String: Any]])
        #expect(images.first?["mimeType"] as? String == "image/png")
        let views = try #require(json["bufferViews"] as? [[String: Any]])
        let view = views[try #require(images.first?["bufferView"] as? Int)]
        let offset = view["byteOffset"] as! Int, length = view["byteLength"] as! Int
        #expect(Array(bin[offset..<(offset + 8)]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let decoded = try ImageDecoder.decode(Array(bin[offset..<(offset + length)]))
        #expect(decoded.image.width == 3 && decoded.image.height == 5)
        #expect((json["materials"] as? [[String: Any]])?.count == 1)
        #expect((json["textures"] as? [[String: Any]])?.count == 1)
    }

    @Test("texturing without UVs and empty meshes are refused")
    func refusals() {
        var mesh = octahedron()
        mesh.uvs = nil
        #expect(throws: MeshIOError.self) { try GLBWriter.encode(mesh, texture: Image(width: 1, height: 1, filledWith: [0, 0, 0])) }
        #expect(throws: MeshIOError.self) { try GLBWriter.encode(Mesh()) }
    }

    @Test("PLY: header and exact body size")
    func ply() throws {
        let mesh = octahedron()
        let bytes = PLYWriter.encode(mesh)
        let text = String(decoding: bytes.prefix(600), as: UTF8.self)
        let headerEnd = try #require(text.range(of: "end_header\n"))
        let headerLength = text.utf8.distance(from: text.startIndex, to: headerEnd.upperBound)
        #expect(text.contains("element vertex 6\n") && text.contains("element face 8\n"))
        // Per vertex: xyz + normal (24 bytes) + rgb (3) + st (8); per face: 1 + 12.
        #expect(bytes.count == headerLength + 6 * 35 + 8 * 13)
    }

    @Test("atomic writes replace files and fail cleanly on a missing directory")
    func atomic() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.glb")
        try GLBWriter.write(octahedron(), to: url)
        try PLYWriter.write(octahedron(), to: url)
        #expect(try Data(contentsOf: url).prefix(3) == Data("ply".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.glb"])
        #expect(throws: MeshIOError.self) {
            try AtomicFile.write([1, 2, 3], to: dir.appendingPathComponent("missing/x.obj"))
        }
    }
}
