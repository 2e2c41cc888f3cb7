// Package schedule reads a schedule's cron expression and time zone into
// the times it fires, and decides which tick is due. Parsing is
// robfig/cron's; what this package adds is the platform's rules: a zone
// given apart from the expression, @every in whole seconds of at least
// one, on a fixed grid, and missed ticks collapsed into one.
package schedule

import (
	"strings"
	"time"
	// Zones are looked up in the binary's own copy of the IANA database,
	// so a container without /usr/share/zoneinfo reads them the same.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"faas/proxies/faas"
)

// parser reads standard five-field expressions and descriptors (@hourly,
// @every 10s and the like).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// MaxExprLen bounds an expression: the longest sensible one is far shorter.
const MaxExprLen = 256

// Spec is a parsed schedule.
type Spec struct {
	cron cron.Schedule
	// every is the interval of an @every schedule, whose ticks are the
	// multiples of it since time.Time's zero (time.Truncate's grid, on
	// which an interval that divides a day ticks at UTC midnight), so
	// that they stay the same across restarts of the scheduler; 0 for a
	// cron schedule.
	every time.Duration
}

// Parse reads a cron expression and an IANA time zone ("" is UTC). Every
// error is a faas.Invalid naming the bad value and what is expected.
func Parse(expr, zone string) (sp Spec, err error) {
	loc, err := location(zone)
	if err != nil {
		return Spec{}, err
	}
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return Spec{}, faas.Errorf(faas.Invalid, "empty cron expression: want five fields (minute hour day-of-month month day-of-week), @hourly and the like, or @every 10s")
	case len(expr) > MaxExprLen:
		return Spec{}, faas.Errorf(faas.Invalid, "cron expression of %d bytes: at most %d are allowed", len(expr), MaxExprLen)
	case strings.Contains(expr, "TZ="):
		// The parser's own zone prefix would be a second, conflicting
		// place for the zone (and it panics on some spellings of it).
		return Spec{}, faas.Errorf(faas.Invalid, "cron expression %q names a zone: give it as timezone instead", expr)
	}
	if rest, ok := strings.CutPrefix(expr, "@every"); ok {
		return parseEvery(expr, strings.TrimSpace(rest))
	}
	defer func() {
		// The parser faces the network; a panic in it is a bad expression.
		if p := recover(); p != nil {
			sp, err = Spec{}, faas.Errorf(faas.Invalid, "invalid cron expression %q", expr)
		}
	}()
	c, err := parser.Parse(expr)
	if err != nil {
		return Spec{}, faas.Errorf(faas.Invalid, "invalid cron expression %q: %v; want five fields (minute hour day-of-month month day-of-week), @hourly and the like, or @every 10s", expr, err)
	}
	if s, ok := c.(*cron.SpecSchedule); ok {
		s.Location = loc
	}
	sp = Spec{cron: c}
	// The parser accepts dates that never come (30 February); robfig's
	// Next answers them with the zero time after searching five years.
	if sp.Next(time.Now()).IsZero() {
		return Spec{}, faas.Errorf(faas.Invalid, "cron expression %q never fires", expr)
	}
	return sp, nil
}

func parseEvery(expr, interval string) (Spec, error) {
	d, err := time.ParseDuration(interval)
	switch {
	case err != nil:
		return Spec{}, faas.Errorf(faas.Invalid, "invalid interval in %q: want @every and a duration such as 10s, 5m or 1h30m", expr)
	case d < time.Second:
		return Spec{}, faas.Errorf(faas.Invalid, "interval %v in %q is under the minimum of 1s", d, expr)
	case d%time.Second != 0:
		return Spec{}, faas.Errorf(faas.Invalid, "interval %v in %q is not whole seconds", d, expr)
	}
	return Spec{every: d}, nil
}

func location(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	// Local would be whatever zone the JQ manager's machine is in.
	if zone == "Local" || len(zone) > 64 {
		return nil, faas.Errorf(faas.Invalid, "unknown timezone %.64q: want an IANA zone such as UTC or Europe/Madrid", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, faas.Errorf(faas.Invalid, "unknown timezone %q: want an IANA zone such as UTC or Europe/Madrid", zone)
	}
	return loc, nil
}

// Next is the first tick after t; the zero time if there is none.
func (sp Spec) Next(t time.Time) time.Time {
	if sp.every > 0 {
		return t.Truncate(sp.every).Add(sp.every)
	}
	return sp.cron.Next(t)
}

// NextN is the first n ticks after t.
func (sp Spec) NextN(t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for range n {
		t = sp.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Due is the tick of a schedule to fire at now, when the ticks up to
// last are done: the latest tick in (last, now]. When the platform was
// down across several ticks, only the latest of them fires; the others
// never do. A scheduler that fired it but crashed before recording it
// gets the same tick again (unless a later one came due meanwhile), so
// deriving the job from the tick makes a retry a no-op.
func (sp Spec) Due(last, now time.Time) (tick time.Time, ok bool) {
	// Walking every tick since last would take long after a long outage
	// of a schedule that fires every second, so look back over a window
	// that doubles until it holds a tick or reaches back to last.
	for window := time.Minute; ; window *= 2 {
		from := now.Add(-window)
		if window > maxLookBack || !from.After(last) {
			from = last
		}
		for t := sp.Next(from); !t.IsZero() && !t.After(now); t = sp.Next(t) {
			tick = t
		}
		if !tick.IsZero() || from.Equal(last) {
			return tick, !tick.IsZero()
		}
	}
}

// maxLookBack ends Due's doubling before a time.Duration overflows.
const maxLookBack = 100 * 365 * 24 * time.Hour
