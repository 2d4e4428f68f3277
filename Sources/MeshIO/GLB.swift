import Foundation
import Imaging
import Meshing

/// Binary glTF 2.0 (GLB): one scene, one node, one mesh with one triangle primitive.
///
/// Attributes: POSITION (with min/max), NORMAL, COLOR_0 (float RGB, converted from the
/// mesh's sRGB colours to glTF's linear ones) and TEXCOORD_0; indices are UNSIGNED_INT.
/// With a texture the PNG is embedded in the binary chunk and referenced by an
/// unlit-looking material (metallic 0, roughness 1). Every buffer view starts on a
/// 4-byte boundary; the JSON chunk is padded with spaces and the binary chunk with zeros
/// to a multiple of 4.
public enum GLBWriter {
    /// glTF magic `glTF`, little-endian.
    public static let magic: UInt32 = 0x4654_6C67
    /// Chunk type `JSON`.
    public static let jsonChunk: UInt32 = 0x4E4F_534A
    /// Chunk type `BIN\0`.
    public static let binaryChunk: UInt32 = 0x004E_4942

    /// The GLB bytes. `texture` needs the mesh to have UVs.
    public static func encode(_ mesh: Mesh, texture: Image? = nil) throws(MeshIOError) -> [UInt8] {
        if texture != nil && mesh.uvs == nil { throw .unsupported("a textured GLB needs texture coordinates") }
        guard mesh.vertexCount > 0 else { throw .unsupported("a GLB needs at least one vertex") }
        var bin = ByteWriter()
        var views: [String] = [], accessors: [String] = [], attributes: [String] = []

        func addView(_ body: (inout ByteWriter) -> Void, target: Int?) -> Int {
            bin.pad(to: 4, with: 0)
            let start = bin.bytes.count
            body(&bin)
            let targetField = target.map { ",\"target\":\($0)" } ?? ""
            views.append("{\"buffer\":0,\"byteOffset\":\(start),\"byteLength\":\(bin.bytes.count - start)\(targetField)}")
            return views.count - 1
        }
        func addAccessor(view: Int, componentType: Int, count: Int, type: String, extra: String = "") -> Int {
            accessors.append("{\"bufferView\":\(view),\"componentType\":\(componentType),\"count\":\(count),\"type\":\"\(type)\"\(extra)}")
            return accessors.count - 1
        }
        let float = 5126, uint = 5125, arrayBuffer = 34962, elementBuffer = 34963
        let n = mesh.vertexCount
        let b = mesh.bounds!
        let pView = addView({ w in for p in mesh.positions { w.le(p.x); w.le(p.y); w.le(p.z) } }, target: arrayBuffer)
        let minMax = ",\"min\":[\(json(b.min.x)),\(json(b.min.y)),\(json(b.min.z))],\"max\":[\(json(b.max.x)),\(json(b.max.y)),\(json(b.max.z))]"
        attributes.append("\"POSITION\":\(addAccessor(view: pView, componentType: float, count: n, type: "VEC3", extra: minMax))")
        if let normals = mesh.normals {
            let v = addView({ w in for p in normals { w.le(p.x); w.le(p.y); w.le(p.z) } }, target: arrayBuffer)
            attributes.append("\"NORMAL\":\(addAccessor(view: v, componentType: float, count: n, type: "VEC3"))")
        }
        if let colors = mesh.colors {
            let v = addView({ w in
                for c in colors { w.le(linear(c.x)); w.le(linear(c.y)); w.le(linear(c.z)) }
            }, target: arrayBuffer)
            attributes.append("\"COLOR_0\":\(addAccessor(view: v, componentType: float, count: n, type: "VEC3"))")
        }
        if let uvs = mesh.uvs {
            let v = addView({ w in for t in uvs { w.le(t.x); w.le(t.y) } }, target: arrayBuffer)
            attributes.append("\"TEXCOORD_0\":\(addAccessor(view: v, componentType: float, count: n, type: "VEC2"))")
        }
        let iView = addView({ w in for t in mesh.triangles { w.le(t.x); w.le(t.y); w.le(t.z) } }, target: elementBuffer)
        let indices = addAccessor(view: iView, componentType: uint, count: mesh.triangleCount * 3, type: "SCALAR")

        var materialJSON = ""
        var materialRef = ""
        if let texture {
            let png: [UInt8]
            do { png = try PNGEncoder.encode(texture) } catch { throw .unsupported("texture could not be encoded: \(error)") }
            let imageView = addView({ w in w.bytes += png }, target: nil)
            materialJSON = """
            ,"materials":[{"name":"photo","pbrMetallicRoughness":{"baseColorTexture":{"index":0},\
            "metallicFactor":0,"roughnessFactor":1}}],\
            "textures":[{"sampler":0,"source":0}],\
            "samplers":[{"magFilter":9729,"minFilter":9729,"wrapS":33071,"wrapT":33071}],\
            "images":[{"bufferView":\(imageView),"mimeType":"image/png"}]
            """
            materialRef = ",\"material\":0"
        }
        bin.pad(to: 4, with: 0)
        let primitive = "{\"attributes\":{\(attributes.joined(separator: ","))},\"indices\":\(indices),\"mode\":4\(materialRef)}"
        let document = """
        {"asset":{"version":"2.0","generator":"myroom-3d"},"scene":0,"scenes":[{"nodes":[0]}],\
        "nodes":[{"mesh":0}],"meshes":[{"primitives":[\(primitive)]}],\
        "accessors":[\(accessors.joined(separator: ","))],"bufferViews":[\(views.joined(separator: ","))],\
        "buffers":[{"byteLength":\(bin.bytes.count)}]\(materialJSON)}
        """
        var jsonBytes = Array(document.utf8)
        while jsonBytes.count % 4 != 0 { jsonBytes.append(0x20) }

        var out = ByteWriter()
        let total = 12 + 8 + jsonBytes.count + 8 + bin.bytes.count
        out.bytes.reserveCapacity(total)
        out.le(magic); out.le(UInt32(2)); out.le(UInt32(total))
        out.le(UInt32(jsonBytes.count)); out.le(jsonChunk); out.bytes += jsonBytes
        out.le(UInt32(bin.bytes.count)); out.le(binaryChunk); out.bytes += bin.bytes
        return out.bytes
    }

    /// Writes the GLB to `url` atomically.
    public static func write(_ mesh: Mesh, to url: URL, texture: Image? = nil) throws(MeshIOError) {
        try AtomicFile.write(encode(mesh, texture: texture), to: url)
    }

    static func json(_ v: Float) -> String { v.isFinite ? "\(v)" : "0" }

    /// sRGB transfer function inverted.
    static func linear(_ c: Float) -> Float {
        let c = min(max(c, 0), 1)
        return c <= 0.04045 ? c / 12.92 : Float(pow(Double((c + 0.055) / 1.055), 2.4))
    }
}
