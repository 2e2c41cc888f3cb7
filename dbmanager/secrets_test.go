package dbmanager_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"faas/dbmanager"
	"faas/dbmanager/dbmanagertest"
	"faas/proxies/faas"
)

const secretValue = "sk-live-4f9c2b7e"

// putSecret stores a function with one secret through the manager.
func putSecret(t *testing.T, s faas.Store) (faas.Function, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"})
	f, _, err := s.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x=>x", Secrets: map[string]string{"API_KEY": secretValue}})
	return f, err
}

// TestSecretsAreEncryptedAtRest reads the database file: the value is not
// in it, and only FunctionVersion answers it.
func TestSecretsAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	cfg := sqliteConfig(t)
	m, stop := start(t, cfg, slog.New(slog.DiscardHandler))
	c := dial(t, m.Endpoint(), 0)
	f, err := putSecret(t, c)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"API_KEY": ""}, f.Secrets)
	full, err := c.FunctionVersion(context.Background(), "ada", "f", f.Version)
	require.NoError(t, err)
	require.Equal(t, secretValue, full.Secrets["API_KEY"])
	stop()

	files, err := filepath.Glob(filepath.Join(cfg.DataDir, "*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		require.NotContains(t, string(b), secretValue, name)
	}

	// Another key cannot decrypt it, and says so without the value.
	cfg.SecretKey = dbmanagertest.SecretKey()
	m, _ = start(t, cfg, slog.New(slog.DiscardHandler))
	_, err = dial(t, m.Endpoint(), 0).FunctionVersion(context.Background(), "ada", "f", f.Version)
	require.Equal(t, faas.Internal, faas.ErrorCode(err))
	require.Contains(t, err.Error(), "FAAS_SECRET_KEY")
	require.NotContains(t, err.Error(), secretValue)
}

// TestSecretsNeedAKey: a manager without FAAS_SECRET_KEY refuses secrets
// but stores env values.
func TestSecretsNeedAKey(t *testing.T) {
	t.Parallel()
	cfg := sqliteConfig(t)
	cfg.SecretKey = ""
	m, _ := start(t, cfg, slog.New(slog.DiscardHandler))
	c := dial(t, m.Endpoint(), 0)
	_, err := putSecret(t, c)
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
	require.Contains(t, err.Error(), "FAAS_SECRET_KEY")
	_, _, err = c.PutFunction(context.Background(), faas.Function{Owner: "ada", Name: "f", Source: "x=>x", Env: map[string]string{"K": "v"}})
	require.NoError(t, err)
}

func TestSecretKeyConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, key, want string }{
		{"not base64", "not*base64", "not base64"},
		{"too short", "c2hvcnQ=", "holds 5 bytes, want 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := sqliteConfig(t)
			cfg.Retention, cfg.SecretKey = time.Hour, tc.key
			err := cfg.Validate()
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), tc.key, "the key is never in a message")
		})
	}
}

// TestLoadOrCreateSecretKey: the key is created once, private, and the
// same on every later start.
func TestLoadOrCreateSecretKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	key, err := dbmanager.LoadOrCreateSecretKey(dir)
	require.NoError(t, err)
	cfg := sqliteConfig(t)
	cfg.Retention, cfg.SecretKey = time.Hour, key
	require.NoError(t, cfg.Validate())
	st, err := os.Stat(filepath.Join(dir, dbmanager.SecretKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	again, err := dbmanager.LoadOrCreateSecretKey(dir)
	require.NoError(t, err)
	require.Equal(t, key, again)
	require.False(t, strings.ContainsAny(key, "\n "))
}

// TestSettingsAreChecked: the manager refuses names and sizes the
// frontend would, whoever calls it.
func TestSettingsAreChecked(t *testing.T) {
	t.Parallel()
	m, _ := start(t, sqliteConfig(t), slog.New(slog.DiscardHandler))
	c := dial(t, m.Endpoint(), 0)
	ctx := context.Background()
	require.NoError(t, c.CreateUser(ctx, faas.User{Name: "ada", TokenHash: "h"}))
	_, _, err := c.PutFunction(ctx, faas.Function{Owner: "ada", Name: "f", Source: "x=>x", Secrets: map[string]string{"1BAD": secretValue}})
	require.Equal(t, faas.Invalid, faas.ErrorCode(err))
	require.NotContains(t, err.Error(), secretValue)
}
