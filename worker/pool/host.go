package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"faas/proxies/faas"
	"faas/worker/sandbox"
)

// Host serves what a running job asks of the platform (sandbox.Host), on
// the worker's side of the pipe: the sandbox has no other way out. Its
// methods act for the job's owner only, and their errors are shown to the
// function as they are.
type Host interface {
	// Function is the current version of the owner's function name.
	Function(ctx context.Context, name string) (Function, error)
	// Submit queues a child job of the owner's function name with args,
	// a JSON array, and returns its ID.
	Submit(ctx context.Context, name string, args json.RawMessage) (string, error)
	// Publish publishes event, one JSON value, to the owner's topic and
	// returns the ids of the jobs it started.
	Publish(ctx context.Context, topic string, event json.RawMessage) ([]string, error)
}

// Function is a function version as a sandbox runs it.
type Function struct {
	Key    Key               `json:"k"`
	Source string            `json:"s"`
	Env    map[string]string `json:"env,omitempty"`
}

// The requests a sandbox sends its worker while a job runs: a reply frame
// whose header names one (reply.Host) and whose part is its JSON
// argument. The worker answers with a hostAnswer frame. A new request is
// one more constant, one more case in serveHost and one more method of
// Host and of link.
const (
	// hostFunction asks for a function to call: functionRequest, answered
	// with a Function.
	hostFunction = "function"
	// hostSubmit asks to submit a child job: submitRequest, answered with
	// the job's ID, a JSON string.
	hostSubmit = "submit"
	// hostPublish asks to publish an event: publishRequest, answered with
	// the jobs' IDs, a JSON array of strings.
	hostPublish = "publish"
)

type functionRequest struct {
	Name string `json:"n"`
}

type submitRequest struct {
	Name string          `json:"n"`
	Args json.RawMessage `json:"a"`
}

type publishRequest struct {
	Topic string          `json:"t"`
	Event json.RawMessage `json:"e"`
}

// hostAnswer heads the worker's answer to a sandbox's request; the part
// is the answer's JSON when Err is nil.
type hostAnswer struct {
	Err *faas.Error `json:"e,omitempty"`
}

// serveHost answers a request of the sandbox's through h, which is nil
// when the job was run without one.
func serveHost(ctx context.Context, h Host, op string, arg []byte) (any, error) {
	if h == nil {
		return nil, faas.Errorf(faas.Unavailable, "this job cannot reach other functions")
	}
	switch op {
	case hostFunction:
		var r functionRequest
		if err := json.Unmarshal(arg, &r); err != nil {
			return nil, fmt.Errorf("bad %s request: %w", op, err)
		}
		return h.Function(ctx, r.Name)
	case hostSubmit:
		var r submitRequest
		if err := json.Unmarshal(arg, &r); err != nil {
			return nil, fmt.Errorf("bad %s request: %w", op, err)
		}
		return h.Submit(ctx, r.Name, r.Args)
	case hostPublish:
		var r publishRequest
		if err := json.Unmarshal(arg, &r); err != nil {
			return nil, fmt.Errorf("bad %s request: %w", op, err)
		}
		return h.Publish(ctx, r.Topic, r.Event)
	}
	return nil, fmt.Errorf("unknown request %.40q", op)
}

// answerHost answers a request from the sandbox of a running job, by
// readBy, when the job's time is up. A failure of the Host goes back to
// the job as its error; only a pipe that fails is an error here.
func (c *child) answerHost(ctx context.Context, readBy time.Time, j Job, rep reply, parts []byte) error {
	if len(parts) != rep.HostLen {
		return errors.New("sandbox sent a request of the wrong length")
	}
	hctx, cancel := context.WithDeadline(ctx, readBy)
	defer cancel()
	out, err := serveHost(hctx, j.Host, rep.Host, parts)
	var ans hostAnswer
	var body []byte
	if err == nil {
		body, err = json.Marshal(out)
	}
	if err != nil {
		ans.Err = faas.AsError(err)
		if ans.Err.Code == faas.Internal {
			// The details are for the worker's log, not for the user.
			ans.Err = faas.Errorf(faas.Unavailable, "the platform could not answer %s", rep.Host)
		}
		body = nil
	}
	frame, err := c.enc.frame(ans, body)
	if err != nil {
		return err
	}
	_, err = c.in.Write(frame)
	return err
}

// link is the sandbox.Host of a job inside a sandbox: each request goes
// to the worker over the pipe, and the job waits for the answer.
type link struct {
	s *server
}

var _ sandbox.Host = link{}

// ask sends the worker request op with arg and decodes its answer into out.
func (l link) ask(op string, arg, out any) error {
	b, err := json.Marshal(arg)
	if err != nil {
		return faas.Errorf(faas.Internal, "sandbox: encode %s: %v", op, err)
	}
	if err := l.s.send(reply{Host: op, HostLen: len(b)}, b); err != nil {
		return faas.Errorf(faas.Internal, "sandbox: send %s: %v", op, err)
	}
	// The answer is read into the buffer the job's request was: its
	// source is compiled and its arguments are values by now.
	var ans hostAnswer
	parts, err := l.s.dec.next(&ans, maxRequest)
	if err != nil {
		return faas.Errorf(faas.Internal, "sandbox: read answer to %s: %v", op, err)
	}
	if ans.Err != nil {
		return ans.Err
	}
	if err := json.Unmarshal(parts, out); err != nil {
		return faas.Errorf(faas.Internal, "sandbox: bad answer to %s: %v", op, err)
	}
	return nil
}

// Function implements sandbox.Host: the worker names the version, and
// the program is compiled once per sandbox like a job's.
func (l link) Function(name string) (*sandbox.Program, int64, error) {
	var f Function
	if err := l.ask(hostFunction, functionRequest{Name: name}, &f); err != nil {
		return nil, 0, err
	}
	p, err := l.s.program(f.Key, f.Source, f.Env)
	return p, f.Key.Version, err
}

// Submit implements sandbox.Host.
func (l link) Submit(name string, args json.RawMessage) (string, error) {
	var id string
	err := l.ask(hostSubmit, submitRequest{Name: name, Args: args}, &id)
	return id, err
}

// Publish implements sandbox.Host.
func (l link) Publish(topic string, event json.RawMessage) ([]string, error) {
	var ids []string
	err := l.ask(hostPublish, publishRequest{Topic: topic, Event: event}, &ids)
	return ids, err
}
