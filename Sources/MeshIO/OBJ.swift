import Foundation
import Imaging
import Meshing

/// Wavefront OBJ: `v` (with `r g b` appended when the mesh has colours), `vt` (v flipped
/// to OBJ's bottom-up convention), `vn`, and 1-based `f a/t/n` faces. With a texture the
/// OBJ names a material library whose one material maps the PNG with `map_Kd`.
public enum OBJWriter {
    /// The OBJ text. `materialLibrary` and `material` add `mtllib` / `usemtl` lines.
    public static func encode(_ mesh: Mesh, materialLibrary: String? = nil, material: String = "photo") -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(mesh.vertexCount * 40 + mesh.triangleCount * 24)
        w.text("# myroom-3d: \(mesh.vertexCount) vertices, \(mesh.triangleCount) triangles\n")
        if let lib = materialLibrary { w.text("mtllib \(lib)\n") }
        let colors = mesh.colors
        for i in 0..<mesh.vertexCount {
            let p = mesh.positions[i]
            w.text("v "); w.float(p.x); w.text(" "); w.float(p.y); w.text(" "); w.float(p.z)
            if let c = colors?[i] {
                w.text(" "); w.float(c.x); w.text(" "); w.float(c.y); w.text(" "); w.float(c.z)
            }
            w.text("\n")
        }
        if let uvs = mesh.uvs {
            for t in uvs { w.text("vt "); w.float(t.x); w.text(" "); w.float(1 - t.y); w.text("\n") }
        }
        if let normals = mesh.normals {
            for n in normals { w.text("vn "); w.float(n.x); w.text(" "); w.float(n.y); w.text(" "); w.float(n.z); w.text("\n") }
        }
        if materialLibrary != nil { w.text("usemtl \(material)\n") }
        let hasT = mesh.uvs != nil, hasN = mesh.normals != nil
        for t in mesh.triangles {
            w.text("f")
            for i in [t.x, t.y, t.z] {
                let s = String(i + 1)
                w.text(" "); w.text(s)
                if hasT && hasN { w.text("/"); w.text(s); w.text("/"); w.text(s) }
                else if hasT { w.text("/"); w.text(s) }
                else if hasN { w.text("//"); w.text(s) }
            }
            w.text("\n")
        }
        return w.bytes
    }

    /// The MTL text of one material whose diffuse map is `textureFile`.
    public static func materialLibrary(material: String = "photo", textureFile: String) -> [UInt8] {
        Array("""
        # myroom-3d
        newmtl \(material)
        Ka 1 1 1
        Kd 1 1 1
        Ks 0 0 0
        d 1
        illum 1
        map_Kd \(textureFile)

        """.utf8)
    }

    /// Writes `url` (an `.obj`) atomically. With `texture` (which needs UVs) it also
    /// writes `<name>.mtl` and `<name>.png` beside it, before the OBJ. Returns every file
    /// written, the OBJ last.
    @discardableResult
    public static func write(_ mesh: Mesh, to url: URL, texture: Image? = nil) throws(MeshIOError) -> [URL] {
        guard let texture else {
            try AtomicFile.write(encode(mesh), to: url)
            return [url]
        }
        guard mesh.uvs != nil else { throw .unsupported("a textured OBJ needs texture coordinates") }
        let stem = url.deletingPathExtension()
        let png = stem.appendingPathExtension("png"), mtl = stem.appendingPathExtension("mtl")
        let pngBytes: [UInt8]
        do { pngBytes = try PNGEncoder.encode(texture) } catch {
            throw .unsupported("texture could not be encoded: \(error)")
        }
        try AtomicFile.write(pngBytes, to: png)
        try AtomicFile.write(materialLibrary(textureFile: png.lastPathComponent), to: mtl)
        try AtomicFile.write(encode(mesh, materialLibrary: mtl.lastPathComponent), to: url)
        return [png, mtl, url]
    }
}

/// A reader for the OBJ subset this project writes and common tools emit: `v` (with
/// optional colours), `vt`, `vn`, and `f` with any of the `v`, `v/t`, `v//n`, `v/t/n`
/// forms, negative (relative) indices and polygons (fan-triangulated). Vertices are
/// split where a position is used with different texture coordinates or normals.
public enum OBJReader {
    /// Parses OBJ text.
    public static func parse(_ bytes: [UInt8]) throws(MeshIOError) -> Mesh {
        var pos: [SIMD3<Float>] = [], col: [SIMD3<Float>] = [], tex: [SIMD2<Float>] = [], nor: [SIMD3<Float>] = []
        var corners: [SIMD3<Int>] = []   // (v, t, n), 0-based, -1 absent
        var faces: [Int] = []            // polygon sizes
        var lineNumber = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(decoding: rawLine, as: UTF8.self)
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let head = parts.first, !head.hasPrefix("#") else { continue }
            func floats(_ n: Int) throws(MeshIOError) -> [Float] {
                let vals = parts.dropFirst().compactMap { Float($0) }
                guard vals.count >= n, vals.count == parts.count - 1 else {
                    throw .malformed(line: lineNumber, reason: "expected \(n) numbers after \(head)")
                }
                return vals
            }
            switch head {
            case "v":
                let f = try floats(3)
                pos.append(SIMD3(f[0], f[1], f[2]))
                if f.count >= 6 { col.append(SIMD3(f[3], f[4], f[5])) }
            case "vt":
                let f = try floats(2)
                tex.append(SIMD2(f[0], 1 - f[1]))
            case "vn":
                let f = try floats(3)
                nor.append(SIMD3(f[0], f[1], f[2]))
            case "f":
                guard parts.count >= 4 else { throw .malformed(line: lineNumber, reason: "a face needs 3 vertices") }
                for token in parts.dropFirst() {
                    let fields = token.split(separator: "/", omittingEmptySubsequences: false)
                    var c = SIMD3<Int>(-1, -1, -1)
                    let counts = [pos.count, tex.count, nor.count]
                    for (k, field) in fields.prefix(3).enumerated() where !field.isEmpty {
                        guard let i = Int(field), i != 0 else {
                            throw .malformed(line: lineNumber, reason: "bad index \(field)")
                        }
                        let index = i > 0 ? i - 1 : counts[k] + i
                        guard index >= 0 && index < counts[k] else {
                            throw .malformed(line: lineNumber, reason: "index \(i) out of range")
                        }
                        c[k] = index
                    }
                    guard c.x >= 0 else { throw .malformed(line: lineNumber, reason: "face without a position") }
                    corners.append(c)
                }
                faces.append(parts.count - 1)
            default:
                continue
            }
        }
        guard col.isEmpty || col.count == pos.count else {
            throw .malformed(line: lineNumber, reason: "colours on only some vertices")
        }
        let allT = !tex.isEmpty && corners.allSatisfy { $0.y >= 0 }
        let allN = !nor.isEmpty && corners.allSatisfy { $0.z >= 0 }
        var outP: [SIMD3<Float>] = [], outC: [SIMD3<Float>] = [], outT: [SIMD2<Float>] = [], outN: [SIMD3<Float>] = []
        var indices: [UInt32] = []
        indices.reserveCapacity(corners.count)
        if corners.allSatisfy({ ($0.y < 0 || $0.y == $0.x) && ($0.z < 0 || $0.z == $0.x) })
            && (!allT || tex.count == pos.count) && (!allN || nor.count == pos.count) {
            // One index for everything (what OBJWriter writes): keep the file's vertex order.
            outP = pos; outC = col
            if allT { outT = tex }
            if allN { outN = nor }
            indices = corners.map { UInt32($0.x) }
        } else {
            // Split vertices by (v, t, n) combination; attributes not on every corner are dropped.
            var key: [SIMD3<Int>: UInt32] = [:]
            for c in corners {
                let c = SIMD3(c.x, allT ? c.y : -1, allN ? c.z : -1)
                if let i = key[c] { indices.append(i); continue }
                let i = UInt32(outP.count)
                key[c] = i
                outP.append(pos[c.x])
                if !col.isEmpty { outC.append(col[c.x]) }
                if allT { outT.append(tex[c.y]) }
                if allN { outN.append(nor[c.z]) }
                indices.append(i)
            }
        }
        var triangles: [SIMD3<UInt32>] = []
        var k = 0
        for n in faces {
            for i in 1..<(n - 1) { triangles.append(SIMD3(indices[k], indices[k + i], indices[k + i + 1])) }
            k += n
        }
        if corners.count == 0 && !pos.isEmpty {
            // Points only: keep the vertices as they are.
            return Mesh(positions: pos, colors: col.isEmpty ? nil : col)
        }
        return Mesh(positions: outP, normals: outN.isEmpty ? nil : outN, colors: outC.isEmpty ? nil : outC,
                    uvs: outT.isEmpty ? nil : outT, triangles: triangles)
    }

    /// Reads and parses an OBJ file.
    public static func read(_ url: URL) throws(MeshIOError) -> Mesh {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .io(path: url.path, reason: "cannot read")
        }
        return try parse(Array(data))
    }
}
