import Foundation
import Glibc

/// The file `<dir>/pgid-<pgid>` that says "selfcal started this process group and has not yet
/// swept it". Written right after the spawn, removed after the final sweep; one still there after
/// selfcal is gone marks a group a SIGKILLed selfcal left behind (see
/// `ProcessRunner.sweepLeftovers(in:logger:)`).
///
/// JSON, so that argument lists with any bytes survive; written atomically (temporary file and
/// rename), so a reader never sees half a record.
struct ProcessRecord: Codable, Equatable, Sendable {
    /// The group id, which is also the pid of its first process.
    var pgid: Int32
    /// `/proc/<pgid>/stat` field 22 of that first process, when it could be read.
    var startTime: UInt64?
    /// argv as spawned.
    var arguments: [String]
    /// The file that was executed.
    var executablePath: String
    /// The selfcal that owns the group, and its start time: while it lives, the record is its own.
    var ownerPID: Int32?
    var ownerStartTime: UInt64?
    /// For a person reading the file.
    var command: String

    static let filePrefix = "pgid-"

    static func fileURL(pgid: Int32, in directory: URL) -> URL {
        directory.appendingPathComponent("\(filePrefix)\(pgid)")
    }

    /// A record for a child just spawned by this process.
    static func forChild(pgid: Int32, arguments: [String], executablePath: String) -> ProcessRecord {
        let me = Syscall.currentProcessID()
        return ProcessRecord(
            pgid: pgid, startTime: ProcFS.stat(pgid)?.startTime,
            arguments: arguments, executablePath: executablePath,
            ownerPID: me, ownerStartTime: ProcFS.stat(me)?.startTime,
            command: arguments.map(shellQuoted).joined(separator: " "))
    }

    func write(in directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: Self.fileURL(pgid: pgid, in: directory), options: .atomic)
    }

    static func read(from url: URL) throws -> ProcessRecord {
        try JSONDecoder().decode(ProcessRecord.self, from: Data(contentsOf: url))
    }

    /// Whether the selfcal that wrote this record is still running (then the group is in use).
    var ownerIsAlive: Bool {
        guard let ownerPID, let ownerStartTime else { return false }
        return ProcFS.isAlive(ownerPID, startTime: ownerStartTime)
    }

    /// Whether `commandLine` (from `/proc/<pid>/cmdline`) looks like the command recorded: the
    /// same argv, or the same arguments after an interpreter (a script run through its `#!`
    /// line shows as `/bin/bash script.sh args`) with the recorded program's name among the words
    /// before them.
    func looksLike(commandLine: [String]) -> Bool {
        if commandLine == arguments { return true }
        guard let first = arguments.first, commandLine.count >= arguments.count else { return false }
        let recordedArguments = arguments.dropFirst()
        guard Array(commandLine.suffix(recordedArguments.count)) == Array(recordedArguments) else {
            return false
        }
        let names = Set([baseName(first), baseName(executablePath)])
        return commandLine.prefix(commandLine.count - recordedArguments.count)
            .contains { names.contains(baseName($0)) }
    }

    /// Whether process `pgid` is still the process this record describes, not a later one given
    /// the same pid: its command line (`/proc/<pid>/cmdline`) must look like the recorded one,
    /// and its start time, when recorded, must be the same (pid and start time name one process
    /// for the whole uptime; a command line alone cannot tell two runs of one command apart).
    func describesLiveLeader(_ info: ProcessStat) -> Bool {
        if let startTime, info.startTime != startTime { return false }
        return ProcFS.commandLine(pgid).map(looksLike(commandLine:)) ?? false
    }
}

private func baseName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
