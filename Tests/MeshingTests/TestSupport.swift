import Meshing
import SeededRandom

enum Shapes {
    /// Signed "inside" field of a sphere (positive inside) on a grid with `n` samples a side.
    static func sphere(radius: Float, n: Int, spacing: Float = 1) -> Volume {
        let c = Float(n - 1) * spacing / 2
        return Volume(width: n, height: n, depth: n, spacing: SIMD3(repeating: spacing)) { x, y, z in
            let p = SIMD3<Float>(Float(x), Float(y), Float(z)) * spacing - c
            return radius - (p * p).sum().squareRoot()
        }
    }

    /// An ellipsoid's algebraic inside field, scaled to roughly distance near the surface.
    static func ellipsoid(axes: SIMD3<Float>, n: SIMD3<Int>, spacing: Float = 1) -> Volume {
        let c = SIMD3<Float>(Float(n.x - 1), Float(n.y - 1), Float(n.z - 1)) * spacing / 2
        let minAxis = axes.min()
        return Volume(width: n.x, height: n.y, depth: n.z, spacing: SIMD3(repeating: spacing)) { x, y, z in
            let p = (SIMD3<Float>(Float(x), Float(y), Float(z)) * spacing - c) / axes
            return (1 - (p * p).sum().squareRoot()) * minAxis
        }
    }

    static func torus(major: Float, minor: Float, n: Int) -> Volume {
        let c = Float(n - 1) / 2
        return Volume(width: n, height: n, depth: n) { x, y, z in
            let p = SIMD3<Float>(Float(x), Float(y), Float(z)) - c
            let q = (p.x * p.x + p.y * p.y).squareRoot() - major
            return minor - (q * q + p.z * p.z).squareRoot()
        }
    }

    /// Uniform noise in -1...1, padded with one layer of -1 so the surface closes.
    static func noise(_ n: SIMD3<Int>, seed: UInt64) -> Volume {
        var rng = SplitMix64(seed: seed)
        return Volume(width: n.x, height: n.y, depth: n.z) { _, _, _ in Float.random(in: -1...1, using: &rng) }
            .padded(by: 1, with: -1)
    }

    /// Numerical surface area of an ellipsoid (midpoint rule in spherical parameters).
    static func ellipsoidArea(_ a: Double, _ b: Double, _ c: Double) -> Double {
        let nu = 2000, nv = 1000
        var sum = 0.0
        for j in 0..<nv {
            let v = (Double(j) + 0.5) / Double(nv) * .pi
            let sv = sin(v), cv = cos(v)
            for i in 0..<nu {
                let u = (Double(i) + 0.5) / Double(nu) * 2 * .pi
                let su = sin(u), cu = cos(u)
                // r_u × r_v for r = (a cos u sin v, b sin u sin v, c cos v)
                let x = b * c * cu * sv * sv, y = a * c * su * sv * sv, z = a * b * sv * cv
                sum += (x * x + y * y + z * z).squareRoot()
            }
        }
        return sum * (2 * .pi / Double(nu)) * (.pi / Double(nv))
    }
}

#if canImport(Glibc)
import Glibc
#endif
