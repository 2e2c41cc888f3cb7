package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"faas/proxies/faas"
)

// FollowLogs streams the job's log lines to emit as the function prints
// them, starting after line from (-1 for all), until the job ends; it
// returns the job's final state. It reads the Server-Sent Events of
// GET /j/:id/logs?follow=1.
func (c *Client) FollowLogs(ctx context.Context, id string, from int, emit func(faas.LogLine) error) (faas.JobState, error) {
	r := Request{Method: http.MethodGet, Path: jobPath(id, "/logs?follow=1"), Header: http.Header{"Accept": {"text/event-stream"}}}
	if from >= 0 {
		r.Header.Set("Last-Event-ID", strconv.Itoa(from))
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// An error, or a server that does not stream: read the envelope.
		if _, err := decode(r, resp); err != nil {
			return "", err
		}
		return "", fmt.Errorf("GET %s: answered %d without an event stream", r.Path, resp.StatusCode)
	}
	return readEvents(bufio.NewScanner(resp.Body), emit)
}

// readEvents parses an event stream: fields up to a blank line make one
// event; "end" carries the final state.
func readEvents(sc *bufio.Scanner, emit func(faas.LogLine) error) (faas.JobState, error) {
	var ev faas.LogLine
	var data []string
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if event == "end" {
				var end struct {
					State faas.JobState `json:"state"`
				}
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &end); err != nil {
					return "", fmt.Errorf("log stream end: %w", err)
				}
				return end.State, nil
			}
			if event != "" || len(data) > 0 {
				ev.Stream, ev.Line = event, strings.Join(data, "\n")
				if ev.Stream == "" {
					ev.Stream = faas.StreamLog
				}
				if err := emit(ev); err != nil {
					return "", err
				}
			}
			ev, data, event = faas.LogLine{}, nil, ""
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.Offset, _ = strconv.Atoi(value)
		case "event":
			event = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("log stream: %w", err)
	}
	return "", faas.Errorf(faas.Unavailable, "log stream ended before the job did")
}
