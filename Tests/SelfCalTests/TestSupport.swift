import Foundation
import Testing

@testable import Imaging

/// Shared helpers for the test suite: temporary directories, fixtures, and running real tools
/// (WSClean, python-casacore, the selfcal binary) with a deadline.
enum TestSupport {
    static let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let fixtures = testsDir.deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let packageRoot = testsDir.deletingLastPathComponent().deletingLastPathComponent()

    /// A fresh directory under the system temp dir; remove it with `cleanup`.
    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-test-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func cleanup(_ url: URL) {
        _ = try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        _ = try? run("/bin/chmod", ["-R", "u+w", url.path], timeout: 30)
        try? FileManager.default.removeItem(at: url)
    }

    struct ToolResult {
        var status: Int32
        var output: String
    }

    /// Runs a program with output to a file (never a pipe), killing it after `timeout` seconds.
    @discardableResult
    static func run(_ executable: String, _ args: [String], timeout: Double = 300, cwd: URL? = nil,
                    environment: [String: String] = [:]) throws -> ToolResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        p.arguments = executable.hasPrefix("/") ? args : [executable] + args
        if let cwd { p.currentDirectoryURL = cwd }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("selfcal-test-out-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let fh = try FileHandle(forWritingTo: log)
        p.standardOutput = fh
        p.standardError = fh
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            try? fh.close()
            let out = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: log)
            Issue.record("\(executable) timed out after \(timeout) s; output:\n\(out.suffix(2000))")
            return ToolResult(status: -1, output: out)
        }
        p.waitUntilExit()
        try? fh.close()
        let out = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: log)
        return ToolResult(status: p.terminationStatus, output: out)
    }

    /// CASA's python (casatools + casatasks) for opt-in cross-checks: `SELFCAL_CASA_PYTHON`, or the
    /// benchmark venv that `bench/setup-casa-venv.sh` makes at the package root; nil when neither.
    static var casaPython: String? {
        if let p = ProcessInfo.processInfo.environment["SELFCAL_CASA_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let venv = packageRoot.appendingPathComponent(".venv-casa/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// Runs a python-casacore script with Debian's python3 (numpy 1.24, which python-casacore needs).
    static func python(_ script: String, timeout: Double = 120) throws -> ToolResult {
        try run("/usr/bin/python3", ["-c", script], timeout: timeout)
    }

    /// The selfcal executable next to the test bundle (`swift build` builds it; scripts/test.sh does).
    static var selfcalBinary: String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [exe, exe.deletingLastPathComponent()] {
            let p = dir.appendingPathComponent("selfcal").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return packageRoot.appendingPathComponent(".build/debug/selfcal").path
    }

    static func selfcal(_ args: [String], timeout: Double = 300) throws -> ToolResult {
        let bin = selfcalBinary
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            Issue.record("selfcal binary not found at \(bin): run `swift build` first (scripts/test.sh does)")
            return ToolResult(status: -1, output: "")
        }
        return try run(bin, args, timeout: timeout)
    }

    /// Extracts the real VLA MS fixture into `dir` and returns its path.
    static func vlaMS(in dir: URL) throws -> String {
        let r = try run("/bin/tar", ["xzf", fixtures.appendingPathComponent("cal1445_ch5-57_avg.ms.tgz").path, "-C", dir.path])
        #expect(r.status == 0, "tar: \(r.output)")
        // Unpacked files keep the archive's read-only modes; make the copy writable like a user's own MS.
        try run("/bin/chmod", ["-R", "u+w", dir.path])
        return dir.appendingPathComponent("cal1445_ch5-57_avg.ms").path
    }

    static func which(_ tool: String) -> String? { findExecutable(tool) }
}

/// Waits (polling) until `condition` holds; records an issue and throws after `limit`.
func pollUntil(_ what: String, within limit: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while !condition() {
        guard clock.now < deadline else {
            Issue.record("timed out waiting until \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
