import Foundation
import Imaging
import Logging
import SelfCalSupport

/// The image geometry of a WSClean predict: nil fields are derived from the MS and the model.
public struct PredictImageGeometry: Sendable, Equatable {
    /// Pixels per side; nil → just large enough to hold every component (plus a margin).
    public var size: Int?
    /// Pixel size, arcsec; nil → a third of λ_min / B_max, so WSClean's uv grid covers the
    /// longest baseline with room to spare (visibilities beyond it would get MODEL_DATA = 0).
    public var scaleArcsec: Double?
    /// Output channels (`-channels-out`), each drawn at its own frequency; nil → one per SPW
    /// (at most 32).
    public var channelsOut: Int?
    /// More WSClean arguments (e.g. `-padding 2 -nwlayers 200` for a more accurate predict:
    /// with WSClean 3.1's defaults, padding 1.2 and its automatic w-layer count, a source
    /// 18′ from the centre of a 512-pixel image is predicted to ~4 % rms on 1.7 km baselines).
    public var extraArguments: [String]

    public init(size: Int? = nil, scaleArcsec: Double? = nil, channelsOut: Int? = nil, extraArguments: [String] = []) {
        self.size = size
        self.scaleArcsec = scaleArcsec
        self.channelsOut = channelsOut
        self.extraArguments = extraArguments
    }
}

/// What a WSClean predict did.
public struct WSCleanPredictResult: Sendable {
    public var size: Int
    public var scaleArcsec: Double
    public var channelsOut: Int
    /// The model images written.
    public var modelImages: [String]
    /// Components outside the image, left out.
    public var componentsOutside: Int
    public var wsclean: WSCleanResult
    public var seconds: Double
}

/// The WSClean path of predict: components are drawn into model images with the geometry
/// WSClean uses (`FITSImage.sky`: SIN about the phase centre, CRPIX at N/2 + 1), each
/// component at the pixel nearest its (l, m) in the UVW frame, flux × spectrum × Airy beam at
/// each output channel's frequency (Jy/pixel; a Gaussian spread over pixels with the same
/// integral), then `wsclean -predict -name <name>` fills MODEL_DATA through an executor.
/// WSClean 3.1 has no `-draw-model`, hence the drawing here.
///
/// Positions are quantised to the pixel grid (≤ half a pixel) and visibilities carry WSClean's
/// gridding error; the native predict has neither.
public struct WSCleanPredictor: Sendable {
    public var components: [SkyComponent]
    public var primaryBeam: AiryBeam?
    public var executor: any WSCleanExecutor
    /// Where the model images and WSClean's log go (must exist).
    public var workDirectory: URL
    public var name: String
    public var geometry: PredictImageGeometry
    public var logger: Logger

    public init(components: [SkyComponent], primaryBeam: AiryBeam? = nil, executor: any WSCleanExecutor,
                workDirectory: URL, name: String = "seed-predict", geometry: PredictImageGeometry = .init(),
                logger: Logger = Logger(label: "selfcal.predict")) {
        self.components = components
        self.primaryBeam = primaryBeam
        self.executor = executor
        self.workDirectory = workDirectory
        self.name = name
        self.geometry = geometry
        self.logger = logger
    }

    /// The drawn model images for an MS, without running WSClean.
    ///
    /// Throws `.badInput` for an unreadable MS, `.badConfig` for a bad geometry.
    public func drawModel(msPath: String) throws -> (images: [(path: String, image: FITSImage)], size: Int, scaleArcsec: Double, outside: Int, spectralWindows: Int) {
        let ms = try MeasurementSet(path: msPath)
        let ref = try PhaseReference(ms: ms)
        let lmn = try ref.lmn(components)
        let offsets = ref.offsets(components)
        let freqs = ms.spectralWindows.flatMap(\.frequencies).sorted()
        guard let fmin = freqs.first, fmin > 0 else { throw PipelineError(.badInput, "the MS has no channel frequencies", context: msPath) }
        // Longest baseline from antenna positions (an upper bound on |uvw|).
        var bmax = 0.0
        for a in ms.antennas { for b in ms.antennas { bmax = max(bmax, ((a.position - b.position) * (a.position - b.position)).sum()) } }
        bmax = bmax.squareRoot()
        let rad2as = 180 / Double.pi * 3600
        let scale = geometry.scaleArcsec ?? (bmax > 0 ? (speedOfLight / freqs.last!) / bmax / 3 * rad2as : 10)
        guard scale > 0, scale.isFinite else { throw PipelineError(.badConfig, "the pixel scale must be positive", context: "scale") }
        let cell = scale / rad2as
        var size = geometry.size ?? 0
        if geometry.size == nil {
            let extent = lmn.map { max(abs($0.x), abs($0.y)) }.max() ?? 0
            let gaussPad = components.compactMap { $0.shape?.majorAxis }.max() ?? 0
            size = Int(((2 * (extent + 2 * gaussPad)) / cell).rounded(.up)) + 32
            size = max(64, (size + 31) / 32 * 32)
        }
        guard size > 0, size <= 32768 else {
            throw PipelineError(.badConfig, "image size \(size) is out of range (1…32768): reduce the search radius or raise the pixel scale", context: "size")
        }
        let k = max(1, min(geometry.channelsOut ?? min(ms.spectralWindows.count, 32), freqs.count))
        let centreDeg = (ref.centreJ2000.ra * 180 / .pi, ref.centreJ2000.dec * 180 / .pi)
        var images: [(String, FITSImage)] = []
        var outside = 0
        let base = workDirectory.appendingPathComponent(name).path
        for g in 0..<k {
            let lo = freqs.count * g / k, hi = freqs.count * (g + 1) / k
            let group = freqs[lo..<hi]
            let nu = group.reduce(0, +) / Double(group.count)
            let width = (group.last! - group.first!) + (freqs.count > 1 ? (freqs[1] - freqs[0]) : 1)
            var image = FITSImage.sky(width: size, height: size, cellArcsec: scale, raDeg: wrap360(centreDeg.0), decDeg: centreDeg.1,
                                      frequencyHz: nu, bandwidthHz: width)
            image.setValue(.string("JY/PIXEL"), forKey: "BUNIT")
            outside = 0
            for (s, c) in components.enumerated() {
                let flux = c.flux(at: nu) * (primaryBeam?.gain(offset: offsets[s], frequency: nu) ?? 1)
                let x = Double(size / 2) - lmn[s].x / cell, y = Double(size / 2) + lmn[s].y / cell
                if !draw(c.shape, flux: flux, x: x, y: y, cell: cell, into: &image) { outside += 1 }
            }
            let path = k == 1 ? base + "-model.fits" : base + String(format: "-%04d-model.fits", g)
            images.append((path, image))
        }
        return (images.map { (path: $0.0, image: $0.1) }, size, scale, outside, ms.spectralWindows.count)
    }

    /// Adds a component at 0-based pixel (x, y); false when it falls outside the image.
    private func draw(_ shape: GaussianShape?, flux: Double, x: Double, y: Double, cell: Double, into image: inout FITSImage) -> Bool {
        let ix = Int(x.rounded()), iy = Int(y.rounded())
        guard ix >= 0, iy >= 0, ix < image.width, iy < image.height else { return false }
        guard let g = shape, g.majorAxis > cell / 2 else {
            image.pixels[iy * image.width + ix] += Float(flux)
            return true
        }
        // Sample the Gaussian on the pixel grid and normalise to the flux. The major axis points
        // at PA from north (+y) through east (−x, RA grows to the left).
        let sigma = 1 / (8 * log(2.0)).squareRoot()
        let sa = g.majorAxis * sigma / cell, sb = max(g.minorAxis, 1e-3 * cell) * sigma / cell
        let (sp, cp) = (sin(g.positionAngle), cos(g.positionAngle))
        let r = Int((4 * sa).rounded(.up))
        var samples: [(Int, Double)] = []
        var total = 0.0
        for yy in max(0, iy - r)...min(image.height - 1, iy + r) {
            for xx in max(0, ix - r)...min(image.width - 1, ix + r) {
                let dl = -(Double(xx) - x), dm = Double(yy) - y
                let along = dl * sp + dm * cp, across = dl * cp - dm * sp
                let w = exp(-0.5 * (along * along / (sa * sa) + across * across / (sb * sb)))
                if w > 1e-6 { samples.append((yy * image.width + xx, w)); total += w }
            }
        }
        for (i, w) in samples { image.pixels[i] += Float(flux * w / total) }
        return true
    }

    /// Draws the model and runs `wsclean -predict` on it, filling MODEL_DATA.
    ///
    /// Throws `.toolFailed` when WSClean fails or times out, `.interrupted` when cancelled,
    /// `.badInput`/`.badConfig` as `drawModel`.
    public func predict(msPath: String) async throws -> WSCleanPredictResult {
        let start = Date()
        let drawn = try drawModel(msPath: msPath)
        if drawn.outside > 0 { logger.warning("\(drawn.outside) component(s) fall outside the \(drawn.size)-pixel predict image and are left out") }
        for (path, image) in drawn.images { try image.write(path: path) }
        var o = WSCleanOptions(name: workDirectory.appendingPathComponent(name).path, size: drawn.size, scaleArcsec: drawn.scaleArcsec)
        o.predict = true
        if drawn.images.count > 1 { o.channelsOut = drawn.images.count }
        o.extraArguments = geometry.extraArguments
        // WSClean refuses to read several SPWs into one output channel without reordering.
        if drawn.images.count == 1 && drawn.spectralWindows > 1 && !o.extraArguments.contains("-reorder") { o.extraArguments.append("-reorder") }
        let log = workDirectory.appendingPathComponent(name + "-wsclean.log")
        logger.info("WSClean predict of \(components.count) component(s): \(drawn.size) px at \(String(format: "%.3g", drawn.scaleArcsec))″, \(drawn.images.count) channel(s) via \(executor.description)")
        let result = try await executor.run(o, measurementSets: [msPath], logPath: log, progress: nil)
        if let w = result.warning { logger.warning("\(w)") }
        return WSCleanPredictResult(size: drawn.size, scaleArcsec: drawn.scaleArcsec, channelsOut: drawn.images.count,
                                    modelImages: drawn.images.map(\.path), componentsOutside: drawn.outside, wsclean: result,
                                    seconds: Date().timeIntervalSince(start))
    }
}
