import Foundation
import Imaging
import Testing

@testable import SelfCal

/// An independent evaluation of a sky model, per visibility, written from the textbook
/// formulas (not from selfcal's predict code): V = Σ A(θ,ν) S(ν) G(u,v) exp(+2πi(ul + vm + w(n−1))).
enum DirectModel {
    static let c = 299_792_458.0

    /// (re, im) for one baseline (metres, J2000) and frequency, phase centre (ra0, dec0) J2000.
    static func visibility(_ comps: [SkyComponent], uvw: (Double, Double, Double), frequency nu: Double,
                           ra0: Double, dec0: Double, dish: Double?) -> (Double, Double) {
        var re = 0.0, im = 0.0
        let (u, v, w) = (uvw.0 * nu / c, uvw.1 * nu / c, uvw.2 * nu / c)
        for s in comps {
            let l = cos(s.dec) * sin(s.ra - ra0)
            let m = sin(s.dec) * cos(dec0) - cos(s.dec) * sin(dec0) * cos(s.ra - ra0)
            let n = (1 - l * l - m * m).squareRoot()
            var a = s.flux * pow(nu / s.referenceFrequency, s.spectralIndex)
            if let dish {
                // Great circle distance by the cosine rule; Airy power pattern.
                let theta = acos(min(1, sin(dec0) * sin(s.dec) + cos(dec0) * cos(s.dec) * cos(s.ra - ra0)))
                let x = Double.pi * dish * sin(theta) * nu / c
                if x > 0 { a *= pow(2 * j1(x) / x, 2) }
            }
            if let g = s.shape {
                let ua = u * sin(g.positionAngle) + v * cos(g.positionAngle)
                let va = u * cos(g.positionAngle) - v * sin(g.positionAngle)
                let k = Double.pi * Double.pi / (4 * log(2.0))
                a *= exp(-k * (pow(g.majorAxis * ua, 2) + pow(g.minorAxis * va, 2)))
            }
            let ph = 2 * Double.pi * (u * l + v * m + w * (n - 1))
            re += a * cos(ph)
            im += a * sin(ph)
        }
        return (re, im)
    }
}

@Suite("Sky models: catalogs, masks, predict, seeding", .serialized)
struct SkyModelTests {
    static let deg = Double.pi / 180
    static let arcsec = Double.pi / 180 / 3600

    /// A small simulated MS without noise or gains: (path, J2000 phase centre).
    static func smallMS(in dir: URL, name: String = "s.ms", integrations: Int = 6, frame: String = "J2000") throws -> String {
        let path = dir.appendingPathComponent(name).path
        var o = SimulationOptions(preset: .small)
        o.noiseJy = 0
        o.corruptGains = false
        o.integrations = integrations
        o.frame = frame
        _ = try Simulator.run(msPath: path, options: o)
        return path
    }

    /// Components around the default phase centre: points with spectra and a Gaussian.
    static func testComponents() -> [SkyComponent] {
        let (ra0, dec0) = SimulationOptions().phaseCentre
        return [
            SkyComponent(name: "A", ra: ra0 + 0.3 * deg, dec: dec0 + 0.2 * deg, flux: 2.0, spectralIndex: -0.8),
            SkyComponent(name: "B", ra: ra0 - 0.9 * deg, dec: dec0 - 0.4 * deg, flux: 1.0, spectralIndex: 0.5, referenceFrequency: 1.3e9),
            SkyComponent(name: "C", ra: ra0 + 0.05 * deg, dec: dec0 + 1.1 * deg, flux: 0.7),
            SkyComponent(name: "G", ra: ra0 - 0.2 * deg, dec: dec0 + 0.3 * deg, flux: 1.5, spectralIndex: -0.7,
                         shape: GaussianShape(majorAxis: 90 * arcsec, minorAxis: 40 * arcsec, positionAngle: 35 * deg)),
        ]
    }

    /// Max |MODEL_DATA − direct| over every visibility (cross hands must be 0), and max |direct|.
    static func compareWithDirect(ms path: String, components: [SkyComponent], dish: Double?) throws -> (maxErr: Double, maxAmp: Double) {
        let ms = try MeasurementSet(path: path)
        let f = ms.fields[0]
        var maxErr = 0.0, maxAmp = 0.0
        for chunk in try ms.rowChunks(targetRows: 1000) {
            let (spw, pol) = try ms.setup(of: chunk.dataDescription)
            let v = try ms.read(chunk, dataColumn: "MODEL_DATA", extra: [.uvw])
            let npol = pol.correlations.count
            for r in 0..<v.rowCount {
                let uvw = (v.uvw[3 * r], v.uvw[3 * r + 1], v.uvw[3 * r + 2])
                for (c, nu) in spw.frequencies.enumerated() {
                    let (er, ei) = DirectModel.visibility(components, uvw: uvw, frequency: nu, ra0: f.ra, dec0: f.dec, dish: dish)
                    maxAmp = max(maxAmp, (er * er + ei * ei).squareRoot())
                    for (p, corr) in pol.correlations.enumerated() {
                        let k = 2 * (r * v.cellSize + c * npol + p)
                        let (xr, xi) = corr.isParallelHand ? (er, ei) : (0, 0)
                        maxErr = max(maxErr, abs(Double(v.data[k]) - xr), abs(Double(v.data[k + 1]) - xi))
                    }
                }
            }
        }
        return (maxErr, maxAmp)
    }

    // MARK: native predict

    /// Both native methods agree with the direct evaluation to float precision: points with
    /// spectral indices, a Gaussian, the Airy beam; also rows whose UVW does not factor into
    /// per-antenna UVW (perturbed by 1 mm) are found and evaluated exactly.
    @Test(.timeLimit(.minutes(2)))
    func nativePredictMatchesDirectEvaluation() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let path = try Self.smallMS(in: dir)
        let comps = Self.testComponents()
        let sumFlux = comps.reduce(0) { $0 + $1.flux } * 1.1
        for method in ModelPredictor.Method.allCases {
            for threads in [1, 2] {
                let ms = try MeasurementSet(path: path, mode: .readWrite)
                let stats = try ModelPredictor(components: comps, primaryBeam: AiryBeam(dishDiameter: 4.65), method: method,
                                               threads: threads).predict(into: ms)
                #expect(stats.rows == ms.rowCount)
                #expect(stats.rowsEvaluatedDirectly == (method == .perRow ? ms.rowCount : 0))
                let (err, amp) = try Self.compareWithDirect(ms: path, components: comps, dish: 4.65)
                #expect(amp > 2, "the model should be substantial")
                // Float32 storage: ~1e-7 relative per term; summed over 4 components.
                #expect(err < 1e-6 * sumFlux, "\(method), \(threads) thread(s): max |MODEL − direct| = \(err) Jy")
            }
        }

        // Rows whose UVW is not a difference of antenna UVWs: 1 mm off on every 7th row.
        do {
            let t = try CasaTable(path: path, writable: true)
            var uvw = try t.readDoubleArrays("UVW", start: 0, count: t.rowCount, cellSize: 3)
            var changed = 0
            for r in stride(from: 3, to: t.rowCount, by: 7) { uvw[3 * r] += 1e-3; changed += 1 }
            try t.writeDoubleArrays("UVW", start: 0, count: t.rowCount, cellSize: 3, uvw)
            try t.flush()
            let ms = try MeasurementSet(path: path, mode: .readWrite)
            let stats = try ModelPredictor(components: comps, primaryBeam: AiryBeam(dishDiameter: 4.65)).predict(into: ms)
            // A perturbed row with the root antenna also throws off rows through that antenna:
            // at least the perturbed rows are found.
            #expect(stats.rowsEvaluatedDirectly >= changed)
            let (err, _) = try Self.compareWithDirect(ms: path, components: comps, dish: 4.65)
            #expect(err < 1e-6 * sumFlux, "with perturbed UVW: max |MODEL − direct| = \(err) Jy")
        }
    }
}
