import Foundation
import Imaging
import SelfCalSupport

/// A clean mask for WSClean's `-fits-mask`: an image with exactly the geometry WSClean will
/// use for the same `-size`/`-scale` (`FITSImage.sky`: SIN about the phase centre, CRPIX at
/// N/2 + 1), 1 within `radius` of each source and 0 elsewhere. Distances are true angular
/// distances between each pixel's world position (through wcslib) and the source.
public struct CleanMask: Sendable {
    public var size: Int
    public var cellArcsec: Double
    /// Image centre, J2000 radians (the MS's phase centre).
    public var centre: (ra: Double, dec: Double)
    public var frequency: Double
    /// Mask radius around each source, radians (`mask_radius_arcsec`).
    public var radius: Double

    /// Throws `.badConfig` naming the option for a non-positive size, cell or radius.
    public init(size: Int, cellArcsec: Double, centre: (ra: Double, dec: Double), frequency: Double, radiusArcsec: Double) throws(PipelineError) {
        guard size > 0, size <= 65536 else { throw PipelineError(.badConfig, "the image size must be 1…65536 pixels (got \(size))", context: "imaging.imsize") }
        guard cellArcsec > 0, cellArcsec.isFinite else { throw PipelineError(.badConfig, "the cell size must be positive (got \(cellArcsec))", context: "imaging.cell_arcsec") }
        guard radiusArcsec > 0, radiusArcsec.isFinite else { throw PipelineError(.badConfig, "the mask radius must be positive (got \(radiusArcsec))", context: "mask_radius_arcsec") }
        self.size = size
        self.cellArcsec = cellArcsec
        self.centre = centre
        self.frequency = frequency
        self.radius = radiusArcsec / 3600 * .pi / 180
    }

    /// The mask for an MS: centred on its phase centre (in J2000), at its mean frequency.
    public init(ms: MeasurementSet, size: Int, cellArcsec: Double, radiusArcsec: Double) throws {
        let ref = try PhaseReference(ms: ms)
        let freqs = ms.spectralWindows.flatMap(\.frequencies)
        try self.init(size: size, cellArcsec: cellArcsec, centre: ref.centreJ2000,
                      frequency: freqs.isEmpty ? 1.4e9 : freqs.reduce(0, +) / Double(freqs.count), radiusArcsec: radiusArcsec)
    }

    /// The mask image. Throws `.badInput` when wcslib fails.
    public func image(sources: [SkyComponent]) throws(PipelineError) -> (image: FITSImage, sourcesInImage: Int) {
        var image = FITSImage.sky(width: size, height: size, cellArcsec: cellArcsec, raDeg: wrap360(centre.ra * 180 / .pi),
                                  decDeg: centre.dec * 180 / .pi, frequencyHz: frequency)
        image.setValue(.string(""), forKey: "BUNIT")
        image.setValue(.string("Mask"), forKey: "BTYPE")
        let wcs = try image.wcs()
        let r2d = 180 / Double.pi
        let pix = try wcs.worldToPixel(sources.map { (raDeg: $0.ra * r2d, decDeg: $0.dec * r2d) })
        let reach = Int((radius * r2d * 3600 / cellArcsec).rounded(.up)) + 2
        var inside = 0
        for (s, p) in zip(sources, pix) where p.x.isFinite && p.y.isFinite {
            let ix = Int(p.x.rounded()), iy = Int(p.y.rounded())
            if ix >= 0, iy >= 0, ix < size, iy < size { inside += 1 }
            let x0 = max(0, ix - reach), x1 = min(size - 1, ix + reach)
            let y0 = max(0, iy - reach), y1 = min(size - 1, iy + reach)
            guard x0 <= x1, y0 <= y1 else { continue }
            var box: [(x: Double, y: Double)] = []
            box.reserveCapacity((x1 - x0 + 1) * (y1 - y0 + 1))
            for y in y0...y1 { for x in x0...x1 { box.append((Double(x), Double(y))) } }
            let world = try wcs.pixelToWorld(box)
            for (b, w) in zip(box, world) where w.raDeg.isFinite {
                if angularSeparation(ra1: s.ra, dec1: s.dec, ra2: w.raDeg / r2d, dec2: w.decDeg / r2d) <= radius {
                    image.pixels[Int(b.y) * size + Int(b.x)] = 1
                }
            }
        }
        return (image, inside)
    }

    /// Writes the mask to `path`; returns how many sources fall inside the image.
    @discardableResult
    public func write(sources: [SkyComponent], to path: String) throws(PipelineError) -> Int {
        let (image, inside) = try image(sources: sources)
        try image.write(path: path)
        return inside
    }
}
