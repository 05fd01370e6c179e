import Foundation

/// A colour map: colours at positions 0…1, interpolated linearly between them.
public struct Colormap: Sendable {
    public var name: String
    var stops: [(t: Double, rgb: SIMD3<Double>)]

    /// Perceptually uniform dark → bright (matplotlib's inferno, sampled at nine points).
    public static let inferno = Colormap(name: "inferno", stops: [
        (0, SIMD3(0, 0, 4)), (0.125, SIMD3(31, 12, 72)), (0.25, SIMD3(85, 15, 109)), (0.375, SIMD3(136, 34, 106)),
        (0.5, SIMD3(186, 54, 85)), (0.625, SIMD3(227, 89, 51)), (0.75, SIMD3(249, 140, 10)),
        (0.875, SIMD3(249, 201, 50)), (1, SIMD3(252, 255, 164)),
    ])
    /// Blue (negative) → white (zero) → red (positive), for residuals (matplotlib's RdBu_r).
    public static let diverging = Colormap(name: "blue-white-red", stops: [
        (0, SIMD3(5, 48, 97)), (0.25, SIMD3(67, 147, 195)), (0.5, SIMD3(247, 247, 247)),
        (0.75, SIMD3(214, 96, 77)), (1, SIMD3(103, 0, 31)),
    ])

    /// The colour at `t` (clamped to 0…1).
    public func rgb(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let t = t.isFinite ? min(1, max(0, t)) : 0
        var i = 1
        while i < stops.count - 1 && stops[i].t < t { i += 1 }
        let a = stops[i - 1], b = stops[i]
        let f = (t - a.t) / (b.t - a.t)
        let c = a.rgb + (b.rgb - a.rgb) * f
        return (UInt8(c.x.rounded()), UInt8(c.y.rounded()), UInt8(c.z.rounded()))
    }

    /// `#rrggbb` at `t`.
    public func hex(_ t: Double) -> String {
        let (r, g, b) = rgb(t)
        return String(format: "#%02x%02x%02x", r, g, b)
    }
}

/// How pixel values map to 0…1 on the colour map.
public enum Stretch: Sendable, Equatable {
    /// `asinh((x − lo)/β) / asinh((hi − lo)/β)`: linear near `lo` (noise within a few β shows),
    /// logarithmic above (bright sources do not swamp it).
    case asinh(lo: Double, hi: Double, softening: Double)
    /// `(x − lo)/(hi − lo)`.
    case linear(lo: Double, hi: Double)

    public var range: (lo: Double, hi: Double) {
        switch self {
        case .asinh(let lo, let hi, _), .linear(let lo, let hi): return (lo, hi)
        }
    }

    /// The display value of `x`, clamped to 0…1.
    public func forward(_ x: Double) -> Double {
        let t: Double
        switch self {
        case .asinh(let lo, let hi, let beta): t = Foundation.asinh((x - lo) / beta) / Foundation.asinh((hi - lo) / beta)
        case .linear(let lo, let hi): t = (x - lo) / (hi - lo)
        }
        return min(1, max(0, t))
    }

    /// The pixel value shown at display value `t`.
    public func inverse(_ t: Double) -> Double {
        switch self {
        case .asinh(let lo, let hi, let beta): return lo + beta * Foundation.sinh(t * Foundation.asinh((hi - lo) / beta))
        case .linear(let lo, let hi): return lo + t * (hi - lo)
        }
    }

    public var description: String {
        switch self {
        case .asinh(let lo, let hi, let beta):
            return "asinh stretch, β = \(formatJy(beta)), from \(formatJy(lo)) (median − 2σ) to \(formatJy(hi)) (peak)"
        case .linear(let lo, let hi): return "linear from \(formatJy(lo)) to \(formatJy(hi)) (99.5th percentile of |value|)"
        }
    }

    /// A restored image: from median − 2σ to the peak, softening 3σ (σ robust).
    public static func forImage(_ values: [Float]) -> Stretch {
        let s = PixelStatistics(values)
        let sigma = s.robustSigma > 0 ? s.robustSigma : max(1e-12, (s.max - s.min) / 100)
        let lo = s.median - 2 * sigma
        let hi = s.max > lo ? s.max : lo + sigma
        return .asinh(lo: lo, hi: hi, softening: 3 * sigma)
    }

    /// A residual: linear and symmetric about zero, to the 99.5th percentile of |value|.
    public static func forResidual(_ values: [Float]) -> Stretch {
        let s = PixelStatistics(values)
        let m = max(abs(s.percentile(0.005)), abs(s.percentile(0.995)), 1e-12)
        return .linear(lo: -m, hi: m)
    }
}

/// Robust statistics of an image's finite pixels (a subsample of at most a million for big images).
struct PixelStatistics {
    var sorted: [Float]
    var min: Double
    var max: Double
    var median: Double
    var robustSigma: Double

    init(_ values: [Float]) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
        let step = Swift.max(1, values.count / 1_000_000)
        var sample = [Float]()
        sample.reserveCapacity(values.count / step + 1)
        var i = 0
        while i < values.count {
            if values[i].isFinite { sample.append(values[i]) }
            i += step
        }
        sample.sort()
        sorted = sample
        min = lo.isFinite ? Double(lo) : 0
        max = hi.isFinite ? Double(hi) : 0
        median = sample.isEmpty ? 0 : Double(sample[sample.count / 2])
        let med = median
        var dev = sample.map { abs(Double($0) - med) }
        dev.sort()
        robustSigma = dev.isEmpty ? 0 : 1.4826 * dev[dev.count / 2]
    }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[Swift.min(sorted.count - 1, Swift.max(0, Int(p * Double(sorted.count - 1))))])
    }
}

/// A catalog source placed on an image.
public struct OverlaySource: Sendable, Equatable {
    public var name: String
    public var raDeg: Double
    public var decDeg: Double
    public var fluxJy: Double
    /// 0-based FITS pixel (x right, y up), as the image's WCS gives it.
    public var x: Double
    public var y: Double

    public init(name: String, raDeg: Double, decDeg: Double, fluxJy: Double, x: Double, y: Double) {
        self.name = name
        self.raDeg = raDeg
        self.decDeg = decDeg
        self.fluxJy = fluxJy
        self.x = x
        self.y = y
    }
}

/// A FITS image drawn for people: a PNG (north up, east left; at most `maxSize` pixels a side,
/// block-averaged when larger), its stretch and colour map, and what to draw over it.
public struct ImagePreview: Sendable {
    public var png: Data
    /// The PNG's size.
    public var width: Int
    public var height: Int
    /// FITS pixels per PNG pixel.
    public var factor: Int
    public var imageWidth: Int
    public var imageHeight: Int
    public var stretch: Stretch
    public var colormap: Colormap
    public var sources: [OverlaySource] = []
    /// The mask's outline as an SVG path in PNG pixel units (nil: no mask).
    public var maskOutline: String?

    /// Renders `image` with `stretch` and `colormap`; NaN pixels are grey.
    public static func render(_ image: FITSImage, stretch: Stretch, colormap: Colormap, maxSize: Int = 512) throws -> ImagePreview {
        let factor = max(1, (max(image.width, image.height) + maxSize - 1) / maxSize)
        let w = max(1, image.width / factor), h = max(1, image.height / factor)
        var lut = [(UInt8, UInt8, UInt8)]()
        for i in 0..<1024 { lut.append(colormap.rgb(Double(i) / 1023)) }
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { px in
            for py in 0..<h {
                // PNG row 0 is the top: FITS row (height − 1) holds the highest declination.
                let fy0 = (h - 1 - py) * factor
                for pxl in 0..<w {
                    var sum = 0.0, n = 0
                    for dy in 0..<factor where fy0 + dy < image.height {
                        let row = (fy0 + dy) * image.width
                        for dx in 0..<factor where pxl * factor + dx < image.width && px[row + pxl * factor + dx].isFinite {
                            sum += Double(px[row + pxl * factor + dx]); n += 1
                        }
                    }
                    let o = (py * w + pxl) * 3
                    if n == 0 {
                        rgb[o] = 96; rgb[o + 1] = 96; rgb[o + 2] = 96
                    } else {
                        let c = lut[Int((stretch.forward(sum / Double(n)) * 1023).rounded())]
                        rgb[o] = c.0; rgb[o + 1] = c.1; rgb[o + 2] = c.2
                    }
                }
            }
        }
        let png = try PNG.encode(RasterImage(width: w, height: h, channels: 3, pixels: rgb))
        return ImagePreview(png: png, width: w, height: h, factor: factor, imageWidth: image.width, imageHeight: image.height,
                            stretch: stretch, colormap: colormap)
    }

    /// PNG coordinates (continuous, origin at the PNG's top-left corner) of FITS pixel (x, y).
    public func pngPoint(x: Double, y: Double) -> (x: Double, y: Double) {
        ((x + 0.5) / Double(factor), Double(height) - (y + 0.5) / Double(factor))
    }

    /// Traces the boundary of a mask of the same size as the image (non-zero = inside) as an
    /// SVG path of pixel edges, in PNG units.
    public mutating func outline(mask: FITSImage) {
        guard mask.width == imageWidth, mask.height == imageHeight else { return }
        let w = mask.width, h = mask.height
        func inside(_ x: Int, _ y: Int) -> Bool {
            x >= 0 && y >= 0 && x < w && y < h && mask.pixels[y * w + x].isFinite && mask.pixels[y * w + x] != 0
        }
        let f = Double(factor)
        var d = ""
        func num(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v) }
        // Edges in FITS pixel-corner coordinates (x from 0 to w, y from 0 to h), drawn in PNG units.
        func segment(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) {
            let ax = Double(x0) / f, ay = Double(height) - Double(y0) / f
            let bx = Double(x1) / f, by = Double(height) - Double(y1) / f
            d += "M\(num(ax)) \(num(ay))L\(num(bx)) \(num(by))"
        }
        for y in 0..<h {
            for x in 0..<w where inside(x, y) {
                if !inside(x - 1, y) { segment(x, y, x, y + 1) }
                if !inside(x + 1, y) { segment(x + 1, y, x + 1, y + 1) }
                if !inside(x, y - 1) { segment(x, y, x + 1, y) }
                if !inside(x, y + 1) { segment(x, y + 1, x + 1, y + 1) }
            }
        }
        maskOutline = d
    }

    /// A horizontal colour bar: the colour map as a gradient with five ticks labelled in the
    /// image's units through the inverse stretch.
    public func colourBarSVG(id: String, unit: String, width: Double = 400) -> String {
        var stops = ""
        for i in 0...32 {
            let t = Double(i) / 32
            stops += "<stop offset=\"\(String(format: "%.4f", t))\" stop-color=\"\(colormap.hex(t))\"/>"
        }
        var ticks = ""
        for i in 0...4 {
            let t = Double(i) / 4
            let x = 1 + t * (width - 2)
            let anchor = i == 0 ? "start" : i == 4 ? "end" : "middle"
            ticks += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"14\" y2=\"18\" stroke=\"#555\"/>"
            ticks += "<text x=\"\(x)\" y=\"30\" text-anchor=\"\(anchor)\">\(htmlEscape(formatJy(stretch.inverse(t))))</text>"
        }
        return """
        <svg class="colourbar" viewBox="0 0 \(width) 34" width="100%" preserveAspectRatio="none" role="img" aria-label="colour bar, \(htmlEscape(unit))">\
        <defs><linearGradient id="\(id)">\(stops)</linearGradient></defs>\
        <rect x="1" y="1" width="\(width - 2)" height="13" fill="url(#\(id))" stroke="#555" stroke-width="0.5"/>\(ticks)</svg>
        """
    }
}

/// A flux for people: "1.23 Jy", "4.5 mJy", "12 µJy".
public func formatJy(_ v: Double) -> String {
    let a = abs(v)
    if a == 0 { return "0 Jy" }
    if a >= 1 { return String(format: "%.3g Jy", v) }
    if a >= 1e-3 { return String(format: "%.3g mJy", v * 1e3) }
    return String(format: "%.3g µJy", v * 1e6)
}

/// Text safe inside HTML elements and attribute values.
public func htmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
