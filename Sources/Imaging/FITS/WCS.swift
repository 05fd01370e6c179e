// The one file that calls wcslib. wcslib does all projection math; this file only converts
// between selfcal's 0-based pixel coordinates and FITS's 1-based ones and maps status codes to
// `PipelineError`.

import CFITSIO
import Foundation
import SelfCalSupport

/// A FITS world coordinate system, parsed and set up by wcslib (`wcspih`, `wcsfix`, `wcsset`),
/// converting between 0-based image pixels and J2000 RA/Dec in degrees.
///
/// Pixel (0, 0) is the centre of the first pixel, `FITSImage.pixels[0]`; FITS pixel (1, 1).
/// Axes beyond the first two (FREQ, STOKES in WSClean images) are held at their reference pixel.
///
/// Thread safety: wcslib's `wcsprm` is not safe to use from two threads at once; every call
/// takes an internal lock, so a `WCS` may be shared, but conversions are serialised. Convert
/// many points per call (the array variants) rather than one per call in a hot loop.
public final class WCS: @unchecked Sendable {
    /// The coordinate system, one of the `count` that `wcspih` allocated at `all`.
    private let parameters: UnsafeMutablePointer<wcsprm>
    private var all: UnsafeMutablePointer<wcsprm>?
    private var count: Int32
    private let lock = NSLock()
    /// Number of axes wcslib set up (NAXIS, or more if the WCS keywords name more).
    public let axisCount: Int
    /// What the coordinates belong to (a path, an image name), for errors.
    public let context: String
    private let referencePixel1: [Double]
    private let referenceValue: [Double]

    /// A WCS from the header of the first image in a FITS file (`ffhdr2str`, then `wcspih`).
    ///
    /// Throws `.badInput` naming the file when it cannot be read or has no celestial WCS.
    public convenience init(path: String) throws(PipelineError) {
        let file = try FITSFile.open(path: path)
        _ = try file.moveToFirstImage()
        let header = try file.headerString()
        try file.close()
        try self.init(headerText: header.text, recordCount: header.records, context: path)
    }

    /// A WCS from header cards (structural keywords are ignored; `axisCount` becomes NAXIS).
    ///
    /// Throws `.badInput` with `context` when the cards hold no celestial WCS wcslib accepts.
    public convenience init(header: [FITSCard], axisCount: Int, context: String)
        throws(PipelineError)
    {
        var records = try FITSCard(key: "NAXIS", value: .integer(axisCount)).records()
        for card in header where !isStructural(card) {
            records += try card.records()
        }
        try self.init(headerText: records.joined(), recordCount: records.count, context: context)
    }

    private init(headerText: String, recordCount: Int, context: String) throws(PipelineError) {
        _ = wcsErrorsEnabled
        var text = Array(headerText.utf8CString)
        var rejected: Int32 = 0
        var count: Int32 = 0
        var all: UnsafeMutablePointer<wcsprm>?
        let status = wcspih(&text, Int32(recordCount), WCSHDR_all, 0, &rejected, &count, &all)
        guard status == 0, let first = all, count > 0 else {
            if all != nil { wcsvfree(&count, &all) }
            throw PipelineError(
                .badInput,
                status == 0 ? "no world coordinate system in header"
                    : "wcslib cannot parse header (wcspih status \(status))",
                context: context)
        }
        // The primary description has alternate code ' '; wcspih lists it first when present.
        var chosen = first
        for index in 0..<Int(count) where (first + index).pointee.alt.0 == CChar(UInt8(ascii: " ")) {
            chosen = first + index
            break
        }
        // Translate non-standard keywords (old date and unit forms) where wcslib can; what it
        // cannot fix is left for wcsset to reject.
        var fixStatus = [Int32](repeating: 0, count: Int(NWCSFIX))
        _ = wcsfix(1, nil, chosen, &fixStatus)
        let setStatus = wcsset(chosen)
        guard setStatus == 0 else {
            let message = Self.message(chosen, setStatus)
            wcsvfree(&count, &all)
            throw PipelineError(.badInput, "invalid world coordinate system: \(message)",
                                context: context)
        }
        let axes = Int(chosen.pointee.naxis)
        let longitude = Int(chosen.pointee.lng)
        let latitude = Int(chosen.pointee.lat)
        guard axes >= 2, Set([longitude, latitude]) == Set([0, 1]) else {
            wcsvfree(&count, &all)
            throw PipelineError(
                .badInput,
                "header has no celestial axes on FITS axes 1 and 2 (need RA---xxx and DEC--xxx)",
                context: context)
        }
        self.parameters = chosen
        self.all = all
        self.count = count
        self.axisCount = axes
        self.context = context
        self.referencePixel1 = (0..<axes).map { chosen.pointee.crpix[$0] }
        self.referenceValue = (0..<axes).map { chosen.pointee.crval[$0] }
    }

    deinit {
        wcsvfree(&count, &all)
    }

    /// The reference pixel (CRPIX), 0-based.
    public var referencePixel: (x: Double, y: Double) {
        (referencePixel1[0] - 1, referencePixel1[1] - 1)
    }

    /// The world coordinates of the reference pixel (CRVAL), RA normalised to 0…360.
    public var referenceWorld: (raDeg: Double, decDeg: Double) {
        let longitude = Int(parameters.pointee.lng)
        let latitude = Int(parameters.pointee.lat)
        return (normalisedRA(referenceValue[longitude]), referenceValue[latitude])
    }

    // MARK: conversions

    /// RA and Dec in degrees of 0-based pixel (x, y); RA in 0…360 (`wcsp2s`).
    ///
    /// Throws `.badInput` when the pixel has no world coordinates (outside a SIN projection's
    /// horizon) or wcslib fails.
    public func pixelToWorld(x: Double, y: Double) throws(PipelineError)
        -> (raDeg: Double, decDeg: Double)
    {
        let world = try pixelToWorld([(x: x, y: y)])[0]
        guard world.raDeg.isFinite, world.decDeg.isFinite else {
            throw PipelineError(.badInput, "pixel (\(x), \(y)) has no world coordinates",
                                context: context)
        }
        return world
    }

    /// 0-based pixel coordinates of (RA, Dec) in degrees (`wcss2p`); RA in any range.
    ///
    /// Throws `.badInput` when the position cannot be projected (on the far side of the sky for
    /// SIN) or wcslib fails.
    public func worldToPixel(raDeg: Double, decDeg: Double) throws(PipelineError)
        -> (x: Double, y: Double)
    {
        let pixel = try worldToPixel([(raDeg: raDeg, decDeg: decDeg)])[0]
        guard pixel.x.isFinite, pixel.y.isFinite else {
            throw PipelineError(.badInput,
                                "position (\(raDeg)°, \(decDeg)°) cannot be projected",
                                context: context)
        }
        return pixel
    }

    /// Converts many pixels in one wcslib call; a pixel without world coordinates gives NaNs.
    ///
    /// Throws `.badInput` when wcslib fails for another reason.
    public func pixelToWorld(_ pixels: [(x: Double, y: Double)]) throws(PipelineError)
        -> [(raDeg: Double, decDeg: Double)]
    {
        guard !pixels.isEmpty else { return [] }
        let axes = axisCount
        var input = [Double](repeating: 0, count: pixels.count * axes)
        for (index, pixel) in pixels.enumerated() {
            let base = index * axes
            for axis in 0..<axes { input[base + axis] = referencePixel1[axis] }
            input[base] = pixel.x + 1
            input[base + 1] = pixel.y + 1
        }
        var intermediate = [Double](repeating: 0, count: input.count)
        var world = [Double](repeating: 0, count: input.count)
        var phi = [Double](repeating: 0, count: pixels.count)
        var theta = [Double](repeating: 0, count: pixels.count)
        var stat = [Int32](repeating: 0, count: pixels.count)
        let status = lock.withLock {
            wcsp2s(parameters, Int32(pixels.count), Int32(axes), input, &intermediate, &phi,
                   &theta, &world, &stat)
        }
        if status != 0 && status != WCSERR_BAD_PIX.rawValue {
            throw PipelineError(.badInput,
                                "pixel to world conversion failed: \(message(status))",
                                context: context)
        }
        let longitude = Int(parameters.pointee.lng)
        let latitude = Int(parameters.pointee.lat)
        return (0..<pixels.count).map { index in
            guard stat[index] == 0 else { return (.nan, .nan) }
            let base = index * axes
            return (normalisedRA(world[base + longitude]), world[base + latitude])
        }
    }

    /// Converts many positions in one wcslib call; a position that cannot be projected gives
    /// NaNs.
    ///
    /// Throws `.badInput` when wcslib fails for another reason.
    public func worldToPixel(_ positions: [(raDeg: Double, decDeg: Double)]) throws(PipelineError)
        -> [(x: Double, y: Double)]
    {
        guard !positions.isEmpty else { return [] }
        let axes = axisCount
        let longitude = Int(parameters.pointee.lng)
        let latitude = Int(parameters.pointee.lat)
        var input = [Double](repeating: 0, count: positions.count * axes)
        for (index, position) in positions.enumerated() {
            let base = index * axes
            for axis in 0..<axes { input[base + axis] = referenceValue[axis] }
            input[base + longitude] = position.raDeg
            input[base + latitude] = position.decDeg
        }
        var intermediate = [Double](repeating: 0, count: input.count)
        var pixel = [Double](repeating: 0, count: input.count)
        var phi = [Double](repeating: 0, count: positions.count)
        var theta = [Double](repeating: 0, count: positions.count)
        var stat = [Int32](repeating: 0, count: positions.count)
        let status = lock.withLock {
            wcss2p(parameters, Int32(positions.count), Int32(axes), input, &phi, &theta,
                   &intermediate, &pixel, &stat)
        }
        if status != 0 && status != WCSERR_BAD_WORLD.rawValue {
            throw PipelineError(.badInput,
                                "world to pixel conversion failed: \(message(status))",
                                context: context)
        }
        return (0..<positions.count).map { index in
            guard stat[index] == 0 else { return (.nan, .nan) }
            let base = index * axes
            return (pixel[base] - 1, pixel[base + 1] - 1)
        }
    }

    // MARK: errors

    /// wcslib's own message for the last error on `parameters` (kept because errors are
    /// enabled with `wcserr_enable`), or the status code.
    private func message(_ status: Int32) -> String {
        lock.withLock { Self.message(parameters, status) }
    }

    private static func message(_ parameters: UnsafeMutablePointer<wcsprm>, _ status: Int32)
        -> String
    {
        if let error = parameters.pointee.err, let text = error.pointee.msg {
            return "\(String(cString: text)) (wcslib status \(status))"
        }
        return "wcslib status \(status)"
    }
}

/// Turns on wcslib's detailed error messages once per process (`wcserr_enable`).
private let wcsErrorsEnabled: Bool = {
    wcserr_enable(1)
    return true
}()

/// RA folded into 0…360 degrees.
private func normalisedRA(_ degrees: Double) -> Double {
    let folded = degrees.truncatingRemainder(dividingBy: 360)
    return folded < 0 ? folded + 360 : folded
}
