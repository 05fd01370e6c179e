import Foundation
import Imaging

/// Writes sky components as a catalog in the NVSS FITS-table layout (extension `AIPS VL`:
/// `RA(2000)`, `DEC(2000)` in degrees, `PEAK INT` in Jy/beam at the reference frequency,
/// `MAJOR AX`, `MINOR AX`, `POSANGLE` in degrees; points have zero axes).
public enum NVSSCatalogWriter {
    public static func write(sources: [SkyComponent], to path: String) throws {
        let deg = 180 / Double.pi
        let table = try FITSTable(columns: [
            .init(name: "RA(2000)", unit: "DEGREE", values: .double(sources.map { wrap360($0.ra * deg) })),
            .init(name: "DEC(2000)", unit: "DEGREE", values: .double(sources.map { $0.dec * deg })),
            .init(name: "PEAK INT", unit: "JY/BEAM", values: .float(sources.map { Float($0.flux) })),
            .init(name: "MAJOR AX", unit: "DEGREE", values: .float(sources.map { _ in 0 })),
            .init(name: "MINOR AX", unit: "DEGREE", values: .float(sources.map { _ in 0 })),
            .init(name: "POSANGLE", unit: "DEGREE", values: .float(sources.map { _ in 0 })),
        ], extensionName: "AIPS VL")
        try table.write(path: path)
    }
}

/// An angle in degrees brought into 0..<360.
func wrap360(_ deg: Double) -> Double {
    let r = deg.truncatingRemainder(dividingBy: 360)
    return r < 0 ? r + 360 : r
}
