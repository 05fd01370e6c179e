import Foundation
import Imaging
import Logging

/// Fills MODEL_DATA from sky components by direct Fourier evaluation, chunk by chunk, spread
/// over the cores: M_pq(ν) = Σ S(ν) exp(+2πi (u l + v m + w (n − 1)) ν / c) with the MS's UVW
/// (ANTENNA2 − ANTENNA1), the convention WSClean uses. Per row and component one complex
/// exponential for the first channel and one for the channel step; channels follow by
/// complex rotation (no sin/cos per visibility).
public struct ModelPredictor: Sendable {
    public var components: [SkyComponent]
    public var logger: Logger

    public init(components: [SkyComponent], logger: Logger = Logger(label: "selfcal.predict")) {
        self.components = components
        self.logger = logger
    }

    /// Writes MODEL_DATA (created if absent) for every row; parallel hands get the model,
    /// cross hands zero (unpolarised components).
    public func predict(into ms: MeasurementSet) throws {
        guard ms.isWritable else {
            throw PipelineError(.badInput, "the MS must be opened for writing to fill MODEL_DATA", context: ms.path)
        }
        for c in components where !(c.ra.isFinite && c.dec.isFinite && c.flux.isFinite) {
            throw PipelineError(.badInput, "component '\(c.name)' has a non-finite position or flux")
        }
        try ms.ensureDataColumn("MODEL_DATA")
        let field = ms.fields[0]
        // Catalog positions are J2000; bring them into the MS's phase-centre frame.
        let epoch = try ms.table.doubles("TIME", start: 0, count: min(1, ms.rowCount)).first ?? 0
        let centre = try Measures.convert(ra: field.ra, dec: field.dec, from: field.frame, to: "J2000", epoch: epoch)
        let lmn: [SIMD3<Double>] = components.map {
            let d = directionCosines(ra: $0.ra, dec: $0.dec, ra0: centre.ra, dec0: centre.dec)
            return SIMD3(d.l, d.m, d.n - 1)
        }
        var model = [Float]()
        for chunk in try ms.rowChunks() {
            try checkCancelled()
            let (spw, pol) = try ms.setup(of: chunk.dataDescription)
            let v = try ms.read(chunk, dataColumn: nil, extra: [.uvw])
            let nchan = spw.channelCount, npol = pol.correlations.count, cs = nchan * npol
            let parallel = pol.correlations.map(\.isParallelHand)
            let freqs = spw.frequencies
            let flux: [Double] = components.flatMap { c in freqs.map { c.flux(at: $0) } }
            model = [Float](repeating: 0, count: 2 * chunk.count * cs)
            let workers = min(ProcessInfo.processInfo.activeProcessorCount, max(1, chunk.count / 256))
            let uvw = v.uvw
            model.withUnsafeMutableBufferPointer { buf in
                let out = SharedPointer(buf.baseAddress!)
                parallelFor(workers) { w in
                    let lo = chunk.count * w / workers, hi = chunk.count * (w + 1) / workers
                    var acc = [Double](repeating: 0, count: 2 * nchan)
                    for row in lo..<hi {
                        for k in 0..<(2 * nchan) { acc[k] = 0 }
                        let u = SIMD3(uvw[3 * row], uvw[3 * row + 1], uvw[3 * row + 2])
                        Self.accumulate(u: u, lmn: lmn, flux: flux, freqs: freqs, into: &acc)
                        let o = out.base + 2 * row * cs
                        for ch in 0..<nchan {
                            for p in 0..<npol where parallel[p] {
                                o[2 * (ch * npol + p)] = Float(acc[2 * ch])
                                o[2 * (ch * npol + p) + 1] = Float(acc[2 * ch + 1])
                            }
                        }
                    }
                }
            }
            try ms.writeData("MODEL_DATA", chunk: chunk, cellSize: cs, from: model)
        }
        try ms.table.release()
        logger.info("predicted \(components.count) component(s) into MODEL_DATA of \(ms.rowCount) rows")
    }

    /// Adds Σ_s S_s(ν_c) exp(2πi u·lmn_s ν_c / c) for each channel into acc (interleaved).
    @inline(__always)
    static func accumulate(u: SIMD3<Double>, lmn: [SIMD3<Double>], flux: [Double], freqs: [Double], into acc: inout [Double]) {
        let nchan = freqs.count
        let k = 2 * Double.pi / 299_792_458.0
        let regular = nchan < 3 || abs((freqs[nchan - 1] - freqs[0]) / Double(nchan - 1) - (freqs[1] - freqs[0])) < 1e-6 * abs(freqs[1] - freqs[0]) + 1e-3
        let step = nchan > 1 ? freqs[1] - freqs[0] : 0
        for (s, d) in lmn.enumerated() {
            let phasePerHz = k * (u * d).sum()
            let fs = s * nchan
            if regular {
                var er = cos(phasePerHz * freqs[0]), ei = sin(phasePerHz * freqs[0])
                let sr = cos(phasePerHz * step), si = sin(phasePerHz * step)
                for c in 0..<nchan {
                    acc[2 * c] += flux[fs + c] * er
                    acc[2 * c + 1] += flux[fs + c] * ei
                    (er, ei) = (er * sr - ei * si, er * si + ei * sr)
                }
            } else {
                for c in 0..<nchan {
                    let ph = phasePerHz * freqs[c]
                    acc[2 * c] += flux[fs + c] * cos(ph)
                    acc[2 * c + 1] += flux[fs + c] * sin(ph)
                }
            }
        }
    }
}
