import SeededRandom
import Testing
@testable import Meshing

@Suite("Marching cubes")
struct MarchingCubesTests {
    @Test("a sphere's area and volume within 1% of the analytic values, closed, one component")
    func sphere() {
        let r: Float = 11
        let mesh = MarchingCubes(level: 0, threads: 1).mesh(Shapes.sphere(radius: r, n: 28))
        let report = mesh.edgeReport()
        #expect(report.isWatertight && report.isConsistentlyWound)
        #expect(mesh.eulerCharacteristic() == 2)
        #expect(mesh.componentCount == 1)
        let area = 4 * Double.pi * Double(r * r), volume = 4 / 3 * Double.pi * Double(r * r * r)
        #expect(abs(mesh.surfaceArea / area - 1) < 0.01, "area \(mesh.surfaceArea) vs \(area)")
        #expect(abs(mesh.volume / volume - 1) < 0.01, "volume \(mesh.volume) vs \(volume)")
        #expect(mesh.duplicatePositionCount() == 0)
        #expect(mesh.degenerateTriangleCount() == 0)
    }

    @Test("an ellipsoid's area and volume within 1%")
    func ellipsoid() {
        let axes = SIMD3<Float>(13, 9, 6)
        let mesh = MarchingCubes(threads: 2).mesh(Shapes.ellipsoid(axes: axes, n: SIMD3(32, 24, 18)))
        #expect(mesh.isClosedManifold)
        let a = Double(axes.x), b = Double(axes.y), c = Double(axes.z)
        let area = Shapes.ellipsoidArea(a, b, c), volume = 4 / 3 * Double.pi * a * b * c
        #expect(abs(mesh.surfaceArea / area - 1) < 0.01, "area \(mesh.surfaceArea) vs \(area)")
        #expect(abs(mesh.volume / volume - 1) < 0.01, "volume \(mesh.volume) vs \(volume)")
    }

    @Test("a torus has Euler characteristic 0")
    func torus() {
        let mesh = MarchingCubes(threads: 2).mesh(Shapes.torus(major: 9, minor: 3.5, n: 30))
        #expect(mesh.isClosedManifold)
        #expect(mesh.eulerCharacteristic() == 0)
        #expect(mesh.componentCount == 1)
        #expect(mesh.volume > 0)
    }

    @Test("the generated tables use exactly the crossed edges of every case and decider outcome")
    func tables() {
        let t = MarchingCubesTables.shared
        #expect(t.triangleStart.count == 256 * 64 + 1)
        #expect(t.triangleStart[1] == 0 && t.triangleStart[255 << 6 + 1] == t.triangleStart[255 << 6])
        var ambiguousCases = 0
        for c in 1..<255 {
            if t.ambiguousFaces[c] != 0 { ambiguousCases += 1 }
            let crossed = Set((0..<12).filter { e in
                let (a, b) = MarchingCubesTables.edgeCorners(e)
                return (c >> a & 1) != (c >> b & 1)
            })
            for bits in 0..<64 where bits & ~Int(t.ambiguousFaces[c]) == 0 {
                let entry = c << 6 | bits
                let codes = t.triangleCodes[Int(t.triangleStart[entry])..<Int(t.triangleStart[entry + 1])]
                #expect(codes.count % 3 == 0 && !codes.isEmpty)
                #expect(Set(codes.filter { $0 < 12 }.map(Int.init)) == crossed, "case \(c) bits \(bits)")
            }
        }
        // Cases with a face whose diagonal corners are alike: the ones the decider resolves.
        #expect(ambiguousCases > 0 && t.ambiguousFaces[0b0000_1001] != 0 && t.ambiguousFaces[0b0000_0011] == 0)
    }

    @Test("every one of the 256 cube configurations is meshed closed after padding",
          arguments: Array(0..<256))
    func everyConfiguration(_ config: Int) {
        var rng = SplitMix64(seed: UInt64(config) &* 7919 &+ 1)
        // Several draws so both outcomes of each ambiguous face's decider occur.
        for _ in 0..<24 {
            var cell = Volume(width: 2, height: 2, depth: 2, values: [Float](repeating: 0, count: 8))
            for corner in 0..<8 {
                let inside = config >> corner & 1 == 1
                cell.values[corner] = inside ? Float.random(in: 0.01...1, using: &rng)
                    : -Float.random(in: 0.01...1, using: &rng)
            }
            let mesh = MarchingCubes(threads: 1).mesh(cell.padded(by: 1, with: -1))
            let report = mesh.edgeReport()
            #expect(report.isWatertight, "config \(config) values \(cell.values): \(report)")
            #expect(report.isConsistentlyWound, "config \(config) values \(cell.values): \(report)")
            if config != 0 { #expect(mesh.volume > 0, "config \(config) is wound inwards") }
            #expect(mesh.duplicatePositionCount() == 0)
        }
    }

    @Test("interior ambiguity (MC33 case 4): a strong body diagonal gives a tunnel, a weak one two blobs",
          arguments: [(Float(1), Float(-0.05), 1), (Float(0.05), Float(-1), 2)])
    func tunnel(inside: Float, outside: Float, components: Int) {
        // Corners 0 and 7 (opposite ends of the body diagonal) inside, the rest outside.
        var cell = Volume(width: 2, height: 2, depth: 2, values: [Float](repeating: outside, count: 8))
        cell.values[0] = inside
        cell.values[7] = inside
        let mesh = MarchingCubes(threads: 1).mesh(cell.padded(by: 1, with: -1))
        #expect(mesh.isClosedManifold)
        #expect(mesh.componentCount == components)
        #expect(mesh.eulerCharacteristic() == 2 * components)
        #expect(mesh.volume > 0)
    }

    @Test("random noise fields are meshed closed, consistently wound, without duplicates",
          arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func noise(seed: UInt64) {
        let volume = Shapes.noise(SIMD3(11, 9, 19), seed: seed)
        for level: Float in [0, 0.4, -0.4] {
            let mesh = MarchingCubes(level: level, threads: 2).mesh(volume)
            let report = mesh.edgeReport()
            #expect(report.isWatertight, "seed \(seed) level \(level): \(report)")
            #expect(report.isConsistentlyWound, "seed \(seed) level \(level): \(report)")
            #expect(mesh.duplicatePositionCount() == 0)
            #expect(mesh.degenerateTriangleCount() == 0)
            #expect(mesh.indicesAreValid)
            #expect(mesh.volume > 0)
        }
    }

    @Test("the same mesh, vertex order included, on 1, 2 and 3 threads")
    func deterministic() {
        let volume = Shapes.noise(SIMD3(20, 17, 37), seed: 42)
        let one = MarchingCubes(level: 0.1, threads: 1).mesh(volume)
        let two = MarchingCubes(level: 0.1, threads: 2).mesh(volume)
        let three = MarchingCubes(level: 0.1, threads: 3).mesh(volume)
        #expect(one.triangleCount > 1000)
        #expect(one == two)
        #expect(one == three)
    }

    @Test("vertices lie on the iso level (linear interpolation along edges)")
    func vertexPositions() {
        // A linear ramp along z: the surface is the plane z = 2.25, closed by padding.
        let ramp = Volume(width: 4, height: 4, depth: 6) { _, _, z in 2.25 - Float(z) }
        let mesh = MarchingCubes(threads: 1).mesh(ramp.padded(by: 1, with: -1))
        #expect(mesh.isClosedManifold)
        let interior = mesh.positions.filter { $0.x > 0.5 && $0.x < 2.5 && $0.y > 0.5 && $0.y < 2.5 && $0.z > 0 }
        #expect(!interior.isEmpty)
        for p in interior { #expect(abs(p.z - 2.25) < 1e-5) }
    }

    @Test("empty and tiny grids give empty meshes")
    func empty() {
        #expect(MarchingCubes().mesh(Volume(width: 1, height: 5, depth: 5, values: [Float](repeating: 1, count: 25))).isEmpty)
        #expect(MarchingCubes().mesh(Volume(width: 3, height: 3, depth: 3) { _, _, _ in -1 }).isEmpty)
    }
}
