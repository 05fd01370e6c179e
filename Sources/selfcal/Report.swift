import ArgumentParser
import Foundation
import Imaging
import SelfCal
import SelfCalSupport

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write report.html for a run's output directory (batch-report.html for a batch directory).")

    @Argument(help: "A run's output directory (holds report.json) or a batch directory (holds batch-summary.json).")
    var directory: String
    @Option(help: "An NVSS-layout FITS catalog to mark on the images instead of the one the run was seeded from.")
    var catalog: String?

    func run() async throws {
        try await runReportingErrors {
            let fm = FileManager.default
            let dir = directory as NSString
            if let catalog, !fm.fileExists(atPath: catalog) {
                throw PipelineError(.badInput, "no such catalog", context: catalog)
            }
            if fm.fileExists(atPath: dir.appendingPathComponent("batch-summary.json")) {
                print(try HTMLReport.writeBatch(batchDir: directory))
            } else if fm.fileExists(atPath: dir.appendingPathComponent("report.json")) {
                print(try HTMLReport.write(outputDir: directory, catalog: catalog))
            } else {
                throw PipelineError(.badInput, "neither report.json (a run's output) nor batch-summary.json (a batch) is here", context: directory)
            }
        }
    }
}
