import Foundation

/// A small, fast, seedable generator (xoshiro256**), so simulations are reproducible.
struct Xoshiro: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x = x &+ 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(&x), splitmix(&x), splitmix(&x), splitmix(&x))
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// A uniform double in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A pair of independent standard normal deviates (Box–Muller).
    mutating func gaussianPair() -> (Double, Double) {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        return (r * cos(2 * .pi * u2), r * sin(2 * .pi * u2))
    }
}
