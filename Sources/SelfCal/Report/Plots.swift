import Foundation
import Imaging

/// Gain plots as inline SVG: phase or amplitude against time, one small panel per antenna, both
/// receptors in each, flagged solutions marked with red crosses (like CASA's `plotms` iterated
/// over antennas).
public enum GainPlot {
    public enum Quantity: String, Sendable {
        case phase, amplitude
    }

    static let receptorColours = ["#1f6fb4", "#e8710a"]
    static let receptorNames = ["X/R", "Y/L"]
    static let flagColour = "#d62728"

    /// The SVG for one table. `antennaNames[i]` names antenna index i (index numbers when absent).
    public static func svg(_ table: GainTable, quantity: Quantity, antennaNames: [String] = [], title: String) -> String {
        let byAntenna = Dictionary(grouping: table.solutions, by: \.antenna)
        let antennas = byAntenna.keys.sorted()
        guard !antennas.isEmpty else {
            return "<p class=\"note\">\(htmlEscape(title)): the table holds no solutions.</p>"
        }
        let times = table.solutions.map(\.time)
        let first = times.min()!, last = times.max()!
        let minutes = (last - first) / 60
        // A little room so the first and last solutions sit inside the frame; a single time in the middle.
        let pad = last - first < 1 ? 30 : 0.04 * (last - first)
        let t0 = first - pad, t1 = last + pad
        let (yLo, yHi, yTicks): (Double, Double, [Double])
        switch quantity {
        case .phase:
            (yLo, yHi, yTicks) = (-180, 180, [-180, -90, 0, 90, 180])
        case .amplitude:
            var top = 0.0
            for s in table.solutions {
                for r in 0..<2 where !s.flags[r] { top = max(top, (s.gains[r] * s.gains[r]).sum().squareRoot()) }
            }
            let hi = niceCeiling(top > 0 ? top * 1.1 : 1.5)
            (yLo, yHi, yTicks) = (0, hi, [0, hi / 2, hi])
        }

        let columns = min(antennas.count, antennas.count > 36 ? 8 : 6)
        let rows = (antennas.count + columns - 1) / columns
        let pw = 150.0, ph = 92.0, left = 34.0, top = 16.0, bottom = 14.0
        let cellW = pw + left + 6, cellH = ph + top + bottom + 4
        let legendH = 22.0
        let totalW = Double(columns) * cellW, totalH = legendH + Double(rows) * cellH + 18
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out = "<svg class=\"gain-plot\" data-quantity=\"\(quantity.rawValue)\" data-antennas=\"\(antennas.count)\" "
        out += "viewBox=\"0 0 \(f(totalW)) \(f(totalH))\" width=\"100%\" role=\"img\" aria-label=\"\(htmlEscape(title))\">"
        // Legend.
        out += "<g class=\"legend\" font-size=\"11\">"
        var lx = 4.0
        for r in 0..<2 {
            out += "<path d=\"M\(f(lx + 4)) 11h0\" stroke=\"\(receptorColours[r])\" stroke-width=\"6\" stroke-linecap=\"round\"/>"
            out += "<text x=\"\(f(lx + 12))\" y=\"15\">receptor \(receptorNames[r])</text>"
            lx += 110
        }
        out += "<path d=\"M\(f(lx + 1)) 8l6 6M\(f(lx + 1)) 14l6 -6\" stroke=\"\(flagColour)\" stroke-width=\"1.6\"/>"
        out += "<text x=\"\(f(lx + 12))\" y=\"15\">flagged</text>"
        let unit = quantity == .phase ? "phase (deg)" : "amplitude"
        out += "<text x=\"\(f(lx + 80))\" y=\"15\" fill=\"#555\">\(unit) against minutes since \(htmlEscape(formatMJDSeconds(first)))</text>"
        out += "</g>"

        for (k, ant) in antennas.enumerated() {
            let sols = byAntenna[ant]!
            let ox = Double(k % columns) * cellW + left, oy = legendH + Double(k / columns) * cellH + top
            func px(_ t: Double) -> Double { ox + (t - t0) / (t1 - t0) * pw }
            func py(_ v: Double) -> Double { oy + ph - (min(yHi, max(yLo, v)) - yLo) / (yHi - yLo) * ph }
            var points = ["", ""], crosses = ""
            var flagged = 0
            for s in sols {
                for r in 0..<2 {
                    let g = s.gains[r]
                    let amp = (g * g).sum().squareRoot()
                    let value = quantity == .phase ? atan2(g.y, g.x) * 180 / .pi : amp
                    let x = px(s.time)
                    if s.flags[r] || !value.isFinite {
                        flagged += 1
                        let y = value.isFinite && amp > 0 ? py(value) : oy + ph - 3
                        crosses += "M\(f(x - 2.5)) \(f(y - 2.5))l5 5M\(f(x - 2.5)) \(f(y + 2.5))l5 -5"
                    } else {
                        points[r] += "M\(f(x)) \(f(py(value)))h0"
                    }
                }
            }
            let name = ant < antennaNames.count ? antennaNames[ant] : String(ant)
            out += "<g class=\"antenna-panel\" data-antenna=\"\(ant)\" data-name=\"\(htmlEscape(name))\" "
            out += "data-solutions=\"\(2 * sols.count)\" data-flagged=\"\(flagged)\">"
            out += "<rect x=\"\(f(ox))\" y=\"\(f(oy))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"#fafafa\" stroke=\"#bbb\" stroke-width=\"0.6\"/>"
            for v in yTicks {
                let y = py(v)
                out += "<line x1=\"\(f(ox))\" x2=\"\(f(ox + pw))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\" stroke-width=\"0.6\"/>"
                out += "<text x=\"\(f(ox - 3))\" y=\"\(f(y + 3))\" text-anchor=\"end\" font-size=\"8.5\" fill=\"#666\">\(tickLabel(v))</text>"
            }
            out += "<text x=\"\(f(ox + 3))\" y=\"\(f(oy - 4))\" font-size=\"10\" font-weight=\"600\">ant \(htmlEscape(name))"
            out += flagged > 0 ? "<tspan fill=\"\(flagColour)\" font-weight=\"400\"> · \(flagged) flagged</tspan></text>" : "</text>"
            out += "<text x=\"\(f(px(first)))\" y=\"\(f(oy + ph + 10))\" font-size=\"8.5\" fill=\"#666\" text-anchor=\"middle\">0</text>"
            if last > first {
                out += "<text x=\"\(f(px(last)))\" y=\"\(f(oy + ph + 10))\" font-size=\"8.5\" fill=\"#666\" text-anchor=\"middle\">\(tickLabel(minutes)) min</text>"
            }
            for r in 0..<2 where !points[r].isEmpty {
                out += "<path class=\"gain-points\" d=\"\(points[r])\" stroke=\"\(receptorColours[r])\" stroke-width=\"3.4\" stroke-linecap=\"round\" fill=\"none\"/>"
            }
            if !crosses.isEmpty {
                out += "<path class=\"gain-flagged\" d=\"\(crosses)\" stroke=\"\(flagColour)\" stroke-width=\"1.3\" fill=\"none\"/>"
            }
            out += "</g>"
        }
        out += "</svg>"
        return out
    }

    /// A small chart of SNR per round: accepted rounds filled, rejected ones hollow.
    public static func snrChart(initial: Double?, rounds: [RoundReport]) -> String {
        let values = [initial].compactMap { $0 } + rounds.map(\.snr)
        guard values.count >= 2 else { return "" }
        let w = 420.0, h = 150.0, left = 44.0, right = 12.0, top = 12.0, bottom = 26.0
        let hi = niceCeiling(values.max()! * 1.1)
        let n = rounds.count
        func x(_ i: Int) -> Double { left + Double(i) / Double(max(1, n)) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - max(0, v) / hi) * (h - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var out = "<svg class=\"snr-chart\" viewBox=\"0 0 \(f(w)) \(f(h))\" width=\"\(f(w))\" role=\"img\" aria-label=\"SNR per round\">"
        for v in [0, hi / 2, hi] {
            out += "<line x1=\"\(f(left))\" x2=\"\(f(w - right))\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#e4e4e4\"/>"
            out += "<text x=\"\(f(left - 4))\" y=\"\(f(y(v) + 3))\" text-anchor=\"end\" font-size=\"10\" fill=\"#666\">\(tickLabel(v))</text>"
        }
        // The best-so-far line through accepted rounds.
        var best = initial ?? 0
        var path = initial.map { "M\(f(x(0))) \(f(y($0)))" } ?? ""
        for (i, r) in rounds.enumerated() {
            if r.accepted { best = r.snr }
            path += (path.isEmpty ? "M" : "L") + "\(f(x(i + 1))) \(f(y(best)))"
        }
        out += "<text x=\"10\" y=\"\(f(top + (h - top - bottom) / 2))\" font-size=\"10\" fill=\"#666\" transform=\"rotate(-90 10 \(f(top + (h - top - bottom) / 2)))\" text-anchor=\"middle\">SNR</text>"
        out += "<path d=\"\(path)\" stroke=\"#2a9d5c\" stroke-width=\"1.5\" fill=\"none\"/>"
        if let initial {
            out += "<circle cx=\"\(f(x(0)))\" cy=\"\(f(y(initial)))\" r=\"4\" fill=\"#555\"><title>initial: SNR \(String(format: "%.1f", initial))</title></circle>"
        }
        out += "<text x=\"\(f(x(0)))\" y=\"\(f(h - 8))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">initial</text>"
        for (i, r) in rounds.enumerated() {
            let colour = r.accepted ? "#2a9d5c" : "#d62728"
            out += "<circle cx=\"\(f(x(i + 1)))\" cy=\"\(f(y(r.snr)))\" r=\"4.5\" fill=\"\(r.accepted ? colour : "#fff")\" stroke=\"\(colour)\" stroke-width=\"1.6\">"
            out += "<title>round \(r.index) (\(htmlEscape(r.calmode)), \(htmlEscape(r.solint))): SNR \(String(format: "%.1f", r.snr)), \(r.accepted ? "accepted" : "rolled back")</title></circle>"
            out += "<text x=\"\(f(x(i + 1)))\" y=\"\(f(h - 8))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">\(r.index)</text>"
        }
        out += "</svg>"
        return out
    }

    /// 1, 2 or 5 × a power of ten, at least `v`.
    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let p = pow(10, floor(log10(v)))
        for m in [1.0, 2, 2.5, 5, 10] where m * p >= v * 0.999_999 { return m * p }
        return 10 * p
    }

    static func tickLabel(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }

    /// A casacore TIME (MJD seconds, UTC) as "2024-05-01 12:34:56 UTC".
    static func formatMJDSeconds(_ t: Double) -> String {
        let unix = t - 3_506_716_800  // MJD 40587 (1970-01-01) in seconds
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return f.string(from: Date(timeIntervalSince1970: unix))
    }
}
