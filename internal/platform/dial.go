package platform

import (
	"log/slog"
	"time"

	"faas/proxies/bus"
	"faas/proxies/dbproxy"
	"faas/proxies/jqproxy"
)

// DialManagers returns proxies for the DB and JQ managers at dbURL and
// jqURL, secured with bc's keys, and how to close both: what a role's
// process does, for a tool that talks to managers it started itself
// (`faas bench`).
func DialManagers(bc bus.Config, dbURL, jqURL string, timeout time.Duration, log *slog.Logger) (*dbproxy.Client, *jqproxy.Client, func(), error) {
	return dialManagers(bc, dbURL, jqURL, timeout, log)
}
