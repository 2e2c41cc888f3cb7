package frontend_test

import (
	"testing"

	"faas/worker/pool/pooltest"
)

// TestMain lets this test binary serve as the sandboxes of the worker that
// startPlatform runs.
func TestMain(m *testing.M) { pooltest.Main(m) }
