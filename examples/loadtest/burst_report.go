package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Issue 13's figures for ssekit under a burst, with the default Config.
const (
	burstTargetRatio      = 0.9  // delivered events/s, over the reference's
	burstTargetCPU        = 0.2  // server CPU seconds per million delivered
	burstTargetPublishMs  = 10.0 // longest single publish call
	burstTargetLateMs     = 100.0
	burstTargetPeakRSSMiB = 80.0
)

// evaluate fills the checks (correctness: a miss fails the run) and the
// performance targets (reported) for the ssekit run. The reference is a
// yardstick: what it does is reported, never judged.
func (rep *burstReport) evaluate() {
	s := rep.run("ssekit")
	if s == nil {
		return
	}
	add := func(hard bool, name string, ok bool, detail string) {
		c := check{Name: name, OK: ok, Detail: detail}
		if hard {
			rep.Checks = append(rep.Checks, c)
		} else {
			rep.Targets = append(rep.Targets, c)
		}
	}
	for _, cl := range []struct {
		name string
		cr   classResult
	}{{"readers", s.Readers}, {"slow readers", s.Slow}} {
		if cl.cr.Clients > 0 {
			add(true, cl.name+": every event exactly once, in order", cl.cr.exact(),
				fmt.Sprintf("lost %s, duplicates %s, gap events %s, skips %s, out of order %s",
					thousands(cl.cr.Lost), thousands(cl.cr.Dups), thousands(cl.cr.GapEvents), thousands(cl.cr.Skips), thousands(cl.cr.OutOfOrd)))
		}
	}
	if l := s.Late; l != nil {
		add(true, "the late joiner gets a new event", l.Got, okText(l.Got, fmt.Sprintf("%.1f ms", l.LatencyMs), l.Error))
		if l.Got {
			add(false, fmt.Sprintf("late joiner within %.0f ms", burstTargetLateMs), l.LatencyMs <= burstTargetLateMs, fmt.Sprintf("%.1f ms", l.LatencyMs))
		}
	}
	if rep.ThroughputRatio > 0 {
		add(false, fmt.Sprintf("delivered events/s >= %.0f%% of the reference's", burstTargetRatio*100),
			rep.ThroughputRatio >= burstTargetRatio, fmt.Sprintf("%.0f%%", rep.ThroughputRatio*100))
	}
	add(false, fmt.Sprintf("server CPU <= %.1f s per million delivered", burstTargetCPU), s.CPUPerMillion <= burstTargetCPU,
		fmt.Sprintf("%.3f s", s.CPUPerMillion))
	add(false, fmt.Sprintf("every publish call <= %.0f ms", burstTargetPublishMs), s.Burst.MaxCallMs <= burstTargetPublishMs,
		fmt.Sprintf("%.2f ms", s.Burst.MaxCallMs))
	add(false, fmt.Sprintf("server peak RSS <= %.0f MiB", burstTargetPeakRSSMiB), s.PeakRSSMiB <= burstTargetPeakRSSMiB,
		fmt.Sprintf("%.1f MiB", s.PeakRSSMiB))
}

// Failed reports whether a correctness check failed.
func (rep *burstReport) Failed() bool {
	for _, c := range rep.Checks {
		if !c.OK {
			return true
		}
	}
	return false
}

// serverTitle names a server in the report's columns.
func serverTitle(name string) string {
	if name == "ring" {
		return "reference"
	}
	return name
}

func (rep *burstReport) print(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "%s: %s\n", c.Workload, rep.About)
	fmt.Fprintf(w, "  %s readers, %s slow readers (%s/s), %s never-readers; %s events x %d B, published in-process (ssekit: %s with core.Config{}; reference: broadcast)\n",
		thousands(int64(c.Readers)), thousands(int64(c.Slow)), bytesText(int64(c.SlowRate)), thousands(int64(c.Never)),
		thousands(int64(c.Events)), c.Size, c.Kind)
	fmt.Fprintf(w, "  machine: %d CPUs, %s, %s; load %s -> %s\n\n", rep.Machine.CPUs, rep.Machine.Kernel, rep.Machine.Go,
		rep.Machine.LoadStart, rep.Machine.LoadEnd)

	row := func(label string, cell func(r *burstRun) string) {
		fmt.Fprintf(w, "  %-38s", label)
		for _, r := range rep.Runs {
			fmt.Fprintf(w, " %16s", cell(r))
		}
		fmt.Fprintln(w)
	}
	n := func(v int64) string { return thousands(v) }
	row("", func(r *burstRun) string { return serverTitle(r.Server) })
	classRows := func(name string, get func(r *burstRun) classResult) {
		row(name+": expected deliveries", func(r *burstRun) string { return n(get(r).Expected) })
		row("  received (distinct)", func(r *burstRun) string { return n(get(r).Received) })
		row("  lost", func(r *burstRun) string {
			cr := get(r)
			return fmt.Sprintf("%s (%.1f%%)", n(cr.Lost), pct(cr.Lost, cr.Expected))
		})
		row("  duplicates", func(r *burstRun) string { return n(get(r).Dups) })
		row("  gap events (ssekit.gap)", func(r *burstRun) string { return n(get(r).GapEvents) })
		row("  skips (stream jumped ahead)", func(r *burstRun) string { return n(get(r).Skips) })
		row("  out of order", func(r *burstRun) string { return n(get(r).OutOfOrd) })
		row("  clients complete", func(r *burstRun) string {
			cr := get(r)
			return fmt.Sprintf("%s/%s", n(int64(cr.Complete)), n(int64(cr.Clients)))
		})
		row("  reconnects", func(r *burstRun) string { return n(get(r).Reconn) })
	}
	if c.Readers > 0 {
		classRows("readers", func(r *burstRun) classResult { return r.Readers })
	}
	if c.Slow > 0 {
		classRows("slow readers", func(r *burstRun) classResult { return r.Slow })
	}
	if c.Late {
		row("late joiner: new event after", func(r *burstRun) string {
			if r.Late == nil || !r.Late.Got {
				return "never"
			}
			return fmt.Sprintf("%.1f ms", r.Late.LatencyMs)
		})
		row("  burst events it got (joined after)", func(r *burstRun) string {
			if r.Late == nil {
				return "-"
			}
			return n(r.Late.BurstEvents)
		})
	}
	if c.Never > 0 {
		row("never-readers cut by the server", func(r *burstRun) string {
			if r.Never == nil {
				return "-"
			}
			return fmt.Sprintf("%d/%d", r.Never.CutByServer, r.Never.Count)
		})
	}
	row("delivered events/s", func(r *burstRun) string { return n(int64(r.DeliveredPerSec)) })
	row("  burst start to last delivery", func(r *burstRun) string { return fmt.Sprintf("%.2f s", r.DeliverySeconds) })
	row("server CPU (user+sys)", func(r *burstRun) string { return fmt.Sprintf("%.2f s", r.CPUSeconds) })
	row("server CPU per million delivered", func(r *burstRun) string { return fmt.Sprintf("%.3f s", r.CPUPerMillion) })
	row("server peak RSS", func(r *burstRun) string { return fmt.Sprintf("%.1f MiB", r.PeakRSSMiB) })
	row("publish calls", func(r *burstRun) string { return n(int64(r.Burst.Calls)) })
	row("  whole burst", func(r *burstRun) string { return fmt.Sprintf("%.3f s", r.Burst.TotalSeconds) })
	row("  longest call", func(r *burstRun) string { return fmt.Sprintf("%.2f ms", r.Burst.MaxCallMs) })
	row("wait ended", func(r *burstRun) string { return fmt.Sprintf("%s %.1fs", r.WaitEnded, r.WaitSeconds) })
	row("this tool's CPU", func(r *burstRun) string { return fmt.Sprintf("%.2f s", r.ClientCPUSeconds) })
	if rep.ThroughputRatio > 0 {
		fmt.Fprintf(w, "\n  throughput ssekit/reference: %.2f\n", rep.ThroughputRatio)
	}
	for _, r := range rep.Runs {
		reasons := map[string]int{}
		for _, cr := range []classResult{r.Readers, r.Slow} {
			for k, v := range cr.Reasons {
				reasons[k] += v
			}
		}
		if len(reasons) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(reasons)) {
				parts = append(parts, fmt.Sprintf("%s %s", thousands(int64(reasons[k])), k))
			}
			fmt.Fprintf(w, "  %s streams ended: %s\n", serverTitle(r.Server), strings.Join(parts, ", "))
		}
		if r.Server == "ssekit" && len(r.Stats) > 0 {
			fmt.Fprintf(w, "  ssekit Stats after: %s\n", strings.TrimSpace(string(r.Stats)))
		}
	}
	if len(rep.Checks)+len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\n  ssekit, issue 13:")
	}
	for _, ch := range rep.Checks {
		fmt.Fprintf(w, "    %-6s %s: %s\n", okText(ch.OK, "ok", "FAIL"), ch.Name, ch.Detail)
	}
	for _, ch := range rep.Targets {
		fmt.Fprintf(w, "    %-6s %s: %s\n", okText(ch.OK, "ok", "MISSED"), ch.Name, ch.Detail)
	}
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b) * 100
}
