import Foundation
import Imaging

/// One component of a sky model: a point (or Gaussian) with a power-law spectrum.
/// Positions are J2000, radians.
public struct SkyComponent: Sendable, Codable, Equatable {
    public var name: String
    public var ra: Double
    public var dec: Double
    /// Flux density in Jy at `referenceFrequency`.
    public var flux: Double
    public var spectralIndex: Double
    public var referenceFrequency: Double

    public init(name: String = "", ra: Double, dec: Double, flux: Double, spectralIndex: Double = 0,
                referenceFrequency: Double = 1.4e9) {
        self.name = name
        self.ra = ra
        self.dec = dec
        self.flux = flux
        self.spectralIndex = spectralIndex
        self.referenceFrequency = referenceFrequency
    }

    /// Flux density at `frequency` (Hz): S · (ν/ν₀)^α.
    public func flux(at frequency: Double) -> Double {
        spectralIndex == 0 ? flux : flux * pow(frequency / referenceFrequency, spectralIndex)
    }
}

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
