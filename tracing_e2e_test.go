package main

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is what the OTLP receiver keeps of an exported span.
type span struct {
	service, name, trace, id, parent string
}

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes what the
// exporters post to /v1/traces and keeps the spans.
type otlpReceiver struct {
	url   string
	mu    sync.Mutex
	spans []span
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf on /v1/traces", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if err != nil {
			t.Errorf("OTLP receiver: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&export)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *otlpReceiver) add(export *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range export.ResourceSpans {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, span{service: service, name: s.Name,
					trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId)})
			}
		}
	}
}

// trace returns the spans received so far of one trace.
func (r *otlpReceiver) trace(id string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.trace == id {
			out = append(out, s)
		}
	}
	return out
}

// TestTraceFollowsAJobThroughEveryProcess runs the roles as separate
// processes exporting to an OTLP receiver, runs one job, and checks that
// its trace, named by the job's record, holds a span of each step in the
// process that does it, under the right parent.
func TestTraceFollowsAJobThroughEveryProcess(t *testing.T) {
	t.Parallel()
	rcv := newOTLPReceiver(t)
	c := newCluster(t, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.url, "OTEL_BSP_SCHEDULE_DELAY=50")
	c.startAll(1)
	a := c.register(t, "tracy")
	r := a.do(http.MethodPost, "/u/tracy/fn/add", "function add(a,b){return a+b}")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Res)
	r = a.do(http.MethodPost, "/u/tracy/fn/add/run", "[4,5]")
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Res)
	var id string
	require.NoError(t, json.Unmarshal(r.Res, &id))
	a.await(id, 30*time.Second)

	r = a.do(http.MethodGet, "/j/"+id+"/info", "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	var info struct {
		TraceID string `json:"trace_id"`
	}
	require.NoError(t, json.Unmarshal(r.Res, &info))
	require.Len(t, info.TraceID, 32, "trace_id %q", info.TraceID)

	// Each step: its span name, the process that records it, and the
	// name of its parent span ("" for the root).
	steps := []struct{ name, service, parent string }{
		{"POST /u/:u/fn/:f/run", "faas-frontend", ""},
		{"jq.submit", "faas-jqmanager", "POST /u/:u/fn/:f/run"},
		{"db.CreateJobs", "faas-dbmanager", "jq.submit"},
		{"sandbox run", "faas-worker", "jq.submit"},
		{"completion", "faas-worker", "jq.submit"},
		{"jq.complete", "faas-jqmanager", "completion"},
		{"db.CompleteJobs", "faas-dbmanager", "jq.complete"},
	}
	// A job that waits in the queue is leased in a step of its own; one
	// submitted while the worker waits with nothing queued is created
	// leased, in db.CreateJobs, with none of these.
	leaseSteps := []struct{ name, service, parent string }{
		{"queue wait", "faas-jqmanager", "jq.submit"},
		{"lease", "faas-jqmanager", "jq.submit"},
		{"db.StartJobs", "faas-dbmanager", "lease"},
	}
	var spans []span
	byName := func(name string) (span, bool) {
		for _, s := range spans {
			if s.name == name {
				return s, true
			}
		}
		return span{}, false
	}
	// The exporters send in batches, some time after the job ended.
	require.Eventually(t, func() bool {
		spans = rcv.trace(info.TraceID)
		for _, st := range steps {
			if _, ok := byName(st.name); !ok {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "steps missing from trace %s: have %+v", info.TraceID, &spans)

	if _, leased := byName("lease"); leased {
		// They end before jq.complete and db.CompleteJobs, in the same
		// processes, whose exporters send spans in the order they end:
		// they are here by now.
		steps = append(steps, leaseSteps...)
	}
	for _, st := range leaseSteps {
		_, ok := byName(st.name)
		_, leased := byName("lease")
		require.Equal(t, leased, ok, "span %q comes with the lease step, or not at all", st.name)
	}
	for _, st := range steps {
		s, _ := byName(st.name)
		require.Equal(t, st.service, s.service, "span %q", st.name)
		if st.parent == "" {
			require.Empty(t, s.parent, "span %q is the root", st.name)
			continue
		}
		p, _ := byName(st.parent)
		require.Equal(t, p.id, s.parent, "parent of span %q is %q", st.name, st.parent)
	}

	// The processes' log lines about the job name its trace: the access
	// line of the submission, the queue's job line, the worker's.
	for _, name := range []string{"frontend", "jqmanager", "worker0"} {
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(filepath.Join(c.logsDir, name+".log"))
			return err == nil && strings.Contains(string(b), "trace_id="+info.TraceID)
		}, 10*time.Second, 50*time.Millisecond, "%s's log names trace %s", name, info.TraceID)
	}
}
