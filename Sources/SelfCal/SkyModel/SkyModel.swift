import Foundation

/// The shape of an extended component: an elliptical Gaussian. Axes are full widths at half
/// maximum (radians, deconvolved: the source itself, not convolved with a survey's beam);
/// the position angle is the major axis's direction from north through east (radians).
public struct GaussianShape: Sendable, Codable, Equatable {
    public var majorAxis: Double
    public var minorAxis: Double
    public var positionAngle: Double

    public init(majorAxis: Double, minorAxis: Double, positionAngle: Double) {
        self.majorAxis = majorAxis
        self.minorAxis = minorAxis
        self.positionAngle = positionAngle
    }

    /// The factor a baseline (u, v) in wavelengths sees: the Fourier transform of a Gaussian of
    /// unit integral, exp(−π²/(4 ln 2) · (θmaj² u′² + θmin² v′²)) with u′ along the major axis.
    public func visibilityFactor(u: Double, v: Double) -> Double {
        let (s, c) = (sin(positionAngle), cos(positionAngle))
        let along = u * s + v * c, across = u * c - v * s
        return exp(-gaussianUVConstant * (majorAxis * majorAxis * along * along + minorAxis * minorAxis * across * across))
    }
}

/// π² / (4 ln 2): a Gaussian of FWHM θ has visibility exp(−this · θ² · |uv|²).
let gaussianUVConstant = Double.pi * Double.pi / (4 * M_LN2)

/// One component of a sky model: a point (or Gaussian) with a power-law spectrum.
/// Positions are J2000, radians.
public struct SkyComponent: Sendable, Codable, Equatable {
    public var name: String
    public var ra: Double
    public var dec: Double
    /// Flux density in Jy at `referenceFrequency` (integrated, for a Gaussian).
    public var flux: Double
    public var spectralIndex: Double
    public var referenceFrequency: Double
    /// nil for a point source.
    public var shape: GaussianShape?

    public init(name: String = "", ra: Double, dec: Double, flux: Double, spectralIndex: Double = 0,
                referenceFrequency: Double = 1.4e9, shape: GaussianShape? = nil) {
        self.name = name
        self.ra = ra
        self.dec = dec
        self.flux = flux
        self.spectralIndex = spectralIndex
        self.referenceFrequency = referenceFrequency
        self.shape = shape
    }

    /// Flux density at `frequency` (Hz): S · (ν/ν₀)^α.
    public func flux(at frequency: Double) -> Double {
        spectralIndex == 0 ? flux : flux * pow(frequency / referenceFrequency, spectralIndex)
    }

    /// Angular distance (radians) to another position, J2000 radians.
    public func separation(ra ra2: Double, dec dec2: Double) -> Double {
        angularSeparation(ra1: ra, dec1: dec, ra2: ra2, dec2: dec2)
    }
}

/// Great-circle distance between two positions (radians), by the haversine formula (accurate
/// at small separations, where the cosine formula loses digits).
public func angularSeparation(ra1: Double, dec1: Double, ra2: Double, dec2: Double) -> Double {
    let sd = sin((dec2 - dec1) / 2), sr = sin((ra2 - ra1) / 2)
    let h = sd * sd + cos(dec1) * cos(dec2) * sr * sr
    return 2 * asin(min(1, h.squareRoot()))
}

/// The primary beam of a uniformly illuminated circular dish: the Airy power pattern
/// A(θ, ν) = (2 J₁(x) / x)² with x = π D ν sin θ / c. Its half-power width is 1.029 λ/D and
/// its first null is at 1.220 λ/D. A visibility of a source at θ from the pointing centre is
/// attenuated by A (both antennas' voltage patterns, identical dishes).
public struct AiryBeam: Sendable, Equatable, Codable {
    /// Dish diameter, metres.
    public var dishDiameter: Double

    public init(dishDiameter: Double) { self.dishDiameter = dishDiameter }

    /// Power gain (0...1) at `offset` radians from the pointing centre and `frequency` Hz.
    public func gain(offset: Double, frequency: Double) -> Double {
        let x = Double.pi * dishDiameter * frequency * sin(offset) / speedOfLight
        if abs(x) < 1e-8 { return 1 }
        let a = 2 * j1(x) / x
        return a * a
    }

    /// Radius of the first null, radians: asin(1.2197 λ/D) (the first zero of J₁ is 3.8317).
    public func firstNull(frequency: Double) -> Double { asin(min(1, 3.831_705_970_207_512 / Double.pi * speedOfLight / (frequency * dishDiameter))) }

    /// Full width at half power, radians: 1.0290 λ/D.
    public func halfPowerWidth(frequency: Double) -> Double { 1.028_993_6 * speedOfLight / (frequency * dishDiameter) }

    /// The beam of a Measurement Set's antennas: the most common positive DISH_DIAMETER in
    /// ANTENNA; nil when none has one.
    public static func of(_ ms: MeasurementSet) -> AiryBeam? {
        let sizes = ms.antennas.map(\.dishDiameter).filter { $0 > 0 && $0.isFinite }
        guard !sizes.isEmpty else { return nil }
        var counts: [Double: Int] = [:]
        for d in sizes { counts[d, default: 0] += 1 }
        return AiryBeam(dishDiameter: counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }!.key)
    }
}

/// Metres per second.
public let speedOfLight = 299_792_458.0

/// Direction cosines (l, m, n) of (ra, dec) relative to the phase centre (ra0, dec0), radians.
public func directionCosines(ra: Double, dec: Double, ra0: Double, dec0: Double) -> (l: Double, m: Double, n: Double) {
    let dra = ra - ra0
    let l = cos(dec) * sin(dra)
    let m = sin(dec) * cos(dec0) - cos(dec) * sin(dec0) * cos(dra)
    let n = (max(0, 1 - l * l - m * m)).squareRoot()
    return (l, m, n)
}

/// Evaluates a sum of point components for every baseline of one timestep by factoring the
/// phase per antenna: with uvw_pq = uvw_q − uvw_p and
/// M_pq(ν) = Σ S(ν) exp(+2πi (u l + v m + w (n − 1)) ν / c),
/// M_pq = Σ S · conj(e_p) · e_q with e_a = exp(+2πi uvw_a·(l, m, n−1) ν / c).
/// One complex exponential per antenna, component and channel; products per baseline.
struct PointPredictor: Sendable {
    /// (l, m, n − 1) per component.
    let lmn: [SIMD3<Double>]
    /// Flux per component and channel: flux[s * nchan + c].
    let flux: [Float]
    let frequencies: [Double]

    init(components: [SkyComponent], phaseCentre: (ra: Double, dec: Double), frequencies: [Double]) {
        lmn = components.map {
            let d = directionCosines(ra: $0.ra, dec: $0.dec, ra0: phaseCentre.ra, dec0: phaseCentre.dec)
            return SIMD3(d.l, d.m, d.n - 1)
        }
        var f = [Float](repeating: 0, count: components.count * frequencies.count)
        for (s, comp) in components.enumerated() {
            for (c, nu) in frequencies.enumerated() { f[s * frequencies.count + c] = Float(comp.flux(at: nu)) }
        }
        flux = f
        self.frequencies = frequencies
    }

    var componentCount: Int { lmn.count }

    /// Per-antenna factors e[(a * ncomp + s) * nchan + c], interleaved complex, for one timestep.
    func antennaFactors(uvw: [SIMD3<Double>]) -> [Float] {
        let ns = lmn.count, nc = frequencies.count
        var e = [Float](repeating: 0, count: 2 * uvw.count * ns * nc)
        let k = 2 * Double.pi / 299_792_458.0
        e.withUnsafeMutableBufferPointer { buf in
            for a in 0..<uvw.count {
                for s in 0..<ns {
                    let phasePerHz = k * (uvw[a] * lmn[s]).sum()
                    // exp(i φ ν) for each channel: rotate by the channel step when channels are regular.
                    let base = 2 * (a * ns + s) * nc
                    for c in 0..<nc {
                        let ph = phasePerHz * frequencies[c]
                        buf[base + 2 * c] = Float(cos(ph))
                        buf[base + 2 * c + 1] = Float(sin(ph))
                    }
                }
            }
        }
        return e
    }

    /// Adds M_pq for every channel into out[2*c], out[2*c+1].
    @inline(__always)
    func accumulate(p: Int, q: Int, factors e: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let ns = lmn.count, nc = frequencies.count
        flux.withUnsafeBufferPointer { fl in
            for s in 0..<ns {
                let ep = e + 2 * (p * ns + s) * nc
                let eq = e + 2 * (q * ns + s) * nc
                let fs = fl.baseAddress! + s * nc
                for c in 0..<nc {
                    let pr = ep[2 * c], pi = ep[2 * c + 1], qr = eq[2 * c], qi = eq[2 * c + 1]
                    // conj(e_p) * e_q
                    let re = pr * qr + pi * qi
                    let im = pr * qi - pi * qr
                    out[2 * c] += fs[c] * re
                    out[2 * c + 1] += fs[c] * im
                }
            }
        }
    }
}
