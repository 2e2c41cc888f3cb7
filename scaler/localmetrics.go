package scaler

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// scrapeTimeout bounds the read of one worker's series: a worker that
// does not answer in time is left out of that scrape, not waited for.
const scrapeTimeout = time.Second

// freeMetricsAddr finds a free loopback port for a worker's /metrics. The port
// could be taken before the worker binds it; the worker then fails to
// start, and the scaler replaces it like any dead worker.
func freeMetricsAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a port for a worker's metrics: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Gatherer returns the series of the workers the backend runs, each
// labelled instance=<worker name>, read from their /metrics when the
// gatherer is asked. With LocalConfig.ServeMetrics off it has none.
func (l *Local) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		l.mu.Lock()
		var workers []*process
		for _, p := range l.running {
			if p.metricsAddr != "" && !p.stopping.Load() {
				workers = append(workers, p)
			}
		}
		l.mu.Unlock()
		// Read every worker at once, so that a scrape waits for the
		// slowest worker, not for the sum of them.
		scraped := make([]map[string]*dto.MetricFamily, len(workers))
		var wg sync.WaitGroup
		for i, p := range workers {
			wg.Go(func() {
				got, err := scrape(p.metricsAddr)
				if err != nil {
					l.log.Debug("scrape worker", "worker", p.name, "err", err)
					return
				}
				scraped[i] = got
			})
		}
		wg.Wait()
		families := map[string]*dto.MetricFamily{}
		for i, got := range scraped {
			for name, mf := range got {
				for _, m := range mf.Metric {
					m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("instance"), Value: proto.String(workers[i].name)})
					sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
				}
				if have, ok := families[name]; ok {
					have.Metric = append(have.Metric, mf.Metric...)
				} else {
					families[name] = mf
				}
			}
		}
		out := make([]*dto.MetricFamily, 0, len(families))
		for _, mf := range families {
			out = append(out, mf)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
		return out, nil
	})
}

func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}
