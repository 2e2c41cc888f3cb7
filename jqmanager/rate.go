package jqmanager

import "time"

// rateWindow is how far back the completion rate looks.
const rateWindow = time.Minute

// rateMeter counts completions in one-second buckets over the last
// rateWindow, so that the rate is known from the first completion on,
// however seldom anyone asks.
type rateMeter struct {
	start   time.Time
	buckets [int(rateWindow / time.Second)]struct {
		sec   int64
		count int64
	}
}

func newRateMeter(now time.Time) *rateMeter { return &rateMeter{start: now} }

// add counts one completion at now.
func (r *rateMeter) add(now time.Time) {
	sec := now.Unix()
	b := &r.buckets[sec%int64(len(r.buckets))]
	if b.sec != sec {
		b.sec, b.count = sec, 0
	}
	b.count++
}

// perSecond is the completions per second over the window ending at now,
// or over the time since start when that is shorter.
func (r *rateMeter) perSecond(now time.Time) float64 {
	sec := now.Unix()
	var n int64
	for _, b := range r.buckets {
		if sec-b.sec < int64(len(r.buckets)) {
			n += b.count
		}
	}
	span := min(now.Sub(r.start), rateWindow).Seconds()
	if span < 1 {
		span = 1
	}
	return float64(n) / span
}
