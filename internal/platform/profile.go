package platform

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/kelseyhightower/envconfig"
)

// ProfileConfig is a debugging aid every role reads: where the CPU goes in
// a process that runs among others (a worker started by the scaler, say),
// which a profiler attached from outside cannot attribute to Go functions
// as well as the runtime's own profiler does.
type ProfileConfig struct {
	// CPUProfile, if set, makes the process profile its CPU from start to
	// graceful exit and write the profile to CPUProfile.<role>.<pid>.
	CPUProfile string `envconfig:"FAAS_CPUPROFILE" desc:"debugging: write a CPU profile of the whole run to <path>.<role>.<pid> at graceful exit"`
}

// startProfile starts the CPU profile FAAS_CPUPROFILE asks for, if any;
// stop ends it and writes the file.
func startProfile(role string, log *slog.Logger) (stop func(), err error) {
	var c ProfileConfig
	if err := envconfig.Process("", &c); err != nil {
		return nil, err
	}
	if c.CPUProfile == "" {
		return func() {}, nil
	}
	stop, err = ProfileCPU(fmt.Sprintf("%s.%s.%d", c.CPUProfile, role, os.Getpid()), log)
	if err != nil {
		return nil, fmt.Errorf("FAAS_CPUPROFILE: %w", err)
	}
	return stop, nil
}

// ProfileCPU profiles this process's CPU into the file path until stop,
// which writes the file: for FAAS_CPUPROFILE, and `faas bench
// -cpuprofile`.
func ProfileCPU(path string, log *slog.Logger) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	log.Info("profiling the CPU", "path", path)
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("write CPU profile", "path", path, "err", err)
		}
	}, nil
}
