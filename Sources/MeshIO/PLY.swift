import Foundation
import Meshing

/// Binary little-endian PLY: `x y z` floats, `nx ny nz` floats when there are normals,
/// `red green blue` bytes when there are colours, `s t` floats when there are UVs, and
/// faces as a `uchar`-counted list of `int` indices.
public enum PLYWriter {
    /// The PLY bytes.
    public static func encode(_ mesh: Mesh) -> [UInt8] {
        var w = ByteWriter()
        w.text("ply\nformat binary_little_endian 1.0\ncomment myroom-3d\nelement vertex \(mesh.vertexCount)\n")
        w.text("property float x\nproperty float y\nproperty float z\n")
        if mesh.normals != nil { w.text("property float nx\nproperty float ny\nproperty float nz\n") }
        if mesh.colors != nil { w.text("property uchar red\nproperty uchar green\nproperty uchar blue\n") }
        if mesh.uvs != nil { w.text("property float s\nproperty float t\n") }
        w.text("element face \(mesh.triangleCount)\nproperty list uchar int vertex_indices\nend_header\n")
        let colors = mesh.colorsUInt8
        for i in 0..<mesh.vertexCount {
            let p = mesh.positions[i]
            w.le(p.x); w.le(p.y); w.le(p.z)
            if let n = mesh.normals?[i] { w.le(n.x); w.le(n.y); w.le(n.z) }
            if let c = colors?[i] { w.bytes += [c.x, c.y, c.z] }
            if let t = mesh.uvs?[i] { w.le(t.x); w.le(1 - t.y) }
        }
        for t in mesh.triangles {
            w.bytes.append(3)
            w.le(Int32(bitPattern: t.x)); w.le(Int32(bitPattern: t.y)); w.le(Int32(bitPattern: t.z))
        }
        return w.bytes
    }

    /// Writes the PLY to `url` atomically.
    public static func write(_ mesh: Mesh, to url: URL) throws(MeshIOError) {
        try AtomicFile.write(encode(mesh), to: url)
    }
}
