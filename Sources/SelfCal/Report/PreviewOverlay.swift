import Foundation
import Imaging

extension ImagePreview {
    /// Places `catalog` on the image through its WCS, keeping the `limit` brightest sources
    /// inside it (a whole-sky catalog is first cut to a circle around the image by angle).
    public mutating func place(_ catalog: [SkyComponent], wcs: WCS, limit: Int = 500) throws {
        guard !catalog.isEmpty else { return }
        let deg = 180 / Double.pi
        let w = Double(imageWidth), h = Double(imageHeight)
        let corners = try wcs.pixelToWorld([(x: w / 2, y: h / 2), (x: -0.5, y: -0.5), (x: w - 0.5, y: -0.5), (x: -0.5, y: h - 0.5), (x: w - 0.5, y: h - 0.5)])
        let c = (ra: corners[0].raDeg / deg, dec: corners[0].decDeg / deg)
        func separation(_ ra: Double, _ dec: Double) -> Double {
            let x = sin(dec) * sin(c.dec) + cos(dec) * cos(c.dec) * cos(ra - c.ra)
            return acos(min(1, max(-1, x)))
        }
        let radius = corners.dropFirst().map { separation($0.raDeg / deg, $0.decDeg / deg) }.max() ?? .pi
        let near = catalog.filter { separation($0.ra, $0.dec) <= radius * 1.05 + 1e-9 }
        guard !near.isEmpty else { return }
        let pix = try wcs.worldToPixel(near.map { (raDeg: $0.ra * deg, decDeg: $0.dec * deg) })
        let inside = zip(near, pix).compactMap { c, p -> OverlaySource? in
            guard p.x.isFinite, p.y.isFinite, p.x >= -0.5, p.y >= -0.5, p.x < w - 0.5, p.y < h - 0.5 else { return nil }
            return OverlaySource(name: c.name, raDeg: c.ra * deg, decDeg: c.dec * deg, fluxJy: c.flux, x: p.x, y: p.y)
        }
        sources = Array(inside.sorted { $0.fluxJy > $1.fluxJy }.prefix(limit))
    }
}
