import Foundation
import Imaging

/// Writes sky components as a catalog in the NVSS FITS-table layout.
public enum NVSSCatalogWriter {
    public static func write(sources: [SkyComponent], to path: String) throws {
        _ = (sources, path) // filled in once FITSTable lands
    }
}
