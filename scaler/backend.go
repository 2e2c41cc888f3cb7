package scaler

import (
	"fmt"
	"log/slog"
	"strconv"
)

// NewBackend builds the backend cfg names, as the scaler's main needs it.
// The local backend runs this very binary's worker role, pointed at the
// scaler's job queue and running as many jobs at once as the policy
// assumes; the rest of the environment (DB_URL, FAAS_*) passes through.
func NewBackend(cfg Config, log *slog.Logger) (Backend, error) {
	switch cfg.Backend {
	case BackendLocal:
		return NewLocal(LocalConfig{
			Env: append([]string{
				"JQ_URL=" + cfg.JQURL,
				"FAAS_WORKER_CONCURRENCY=" + strconv.Itoa(cfg.WorkerConcurrency),
			}, cfg.WorkerEnv...),
			Grace: cfg.StopGrace,
		}, log)
	case BackendKumori:
		creds, err := LoadCredentials(cfg.KumoriCredentials, cfg.KumoriUser, cfg.KumoriPassword)
		if err != nil {
			return nil, err
		}
		return NewKumori(KumoriConfig{
			Deployment:  cfg.KumoriDeployment,
			Dir:         cfg.KumoriDir,
			Credentials: creds,
		}, log)
	default:
		return nil, fmt.Errorf("unknown scaler backend %q", cfg.Backend)
	}
}
