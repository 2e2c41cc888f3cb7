package scaler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewBackend(t *testing.T) {
	t.Parallel()
	cfg := validConfig()
	cfg.JQURL = "tcp://127.0.0.1:1"
	b, err := NewBackend(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	l, ok := b.(*Local)
	require.True(t, ok, "%T", b)
	self, err := os.Executable()
	require.NoError(t, err)
	assert.Equal(t, self, l.cfg.Path)
	assert.Equal(t, []string{"worker"}, l.cfg.Args)
	assert.Equal(t, []string{"JQ_URL=tcp://127.0.0.1:1", "FAAS_WORKER_CONCURRENCY=2"}, l.cfg.Env)
	assert.Equal(t, cfg.StopGrace, l.cfg.Grace)

	f := newFakeKumori(t, testModule)
	cfg.Backend, cfg.KumoriDeployment, cfg.KumoriDir = BackendKumori, testDeployment, f.deploy
	cfg.KumoriCredentials = filepath.Join(t.TempDir(), "KUMORI_CREDENTIALS")
	_, err = NewBackend(cfg, nil)
	assert.ErrorContains(t, err, "KUMORI_CREDENTIALS", "no credentials")

	require.NoError(t, os.WriteFile(cfg.KumoriCredentials, []byte(testUser+"\n"+testPassword+"\n"), 0o600))
	b, err = NewBackend(cfg, nil)
	require.NoError(t, err)
	k, ok := b.(*Kumori)
	require.True(t, ok, "%T", b)
	assert.Equal(t, Credentials{testUser, testPassword}, k.cfg.Credentials)
	n, err := k.Workers(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 3, n)

	cfg.Backend = "k8s"
	_, err = NewBackend(cfg, nil)
	assert.Error(t, err)
}
