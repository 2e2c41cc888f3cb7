package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"faas/frontend/client"
)

// DefaultURL is the API a fresh `faas up` serves.
const DefaultURL = "http://127.0.0.1:8080"

// Config is what the CLI remembers between runs: where the platform is and
// who the user is. The file holds a token, so it is written 0600.
type Config struct {
	URL   string `json:"url"`
	User  string `json:"user"`
	Token string `json:"token"`
}

// configPath is $XDG_CONFIG_HOME/faas/config.json, ~/.config/faas/config.json
// without XDG_CONFIG_HOME.
func (f *Factory) configPath() (string, error) {
	dir := f.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := f.Getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the credentials")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "faas", "config.json"), nil
}

// Config reads the config file, if any, then lets FAAS_URL, FAAS_USER and
// FAAS_TOKEN override it.
func (f *Factory) Config() (Config, error) {
	var c Config
	path, err := f.configPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("read config: %w", err)
	default:
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("config %s is not valid JSON: %w", path, err)
		}
	}
	for _, o := range []struct {
		name string
		to   *string
	}{{"FAAS_URL", &c.URL}, {"FAAS_USER", &c.User}, {"FAAS_TOKEN", &c.Token}} {
		if v := f.Getenv(o.name); v != "" {
			*o.to = v
		}
	}
	return c, nil
}

// SaveConfig writes c to the config file, readable by its owner only, and
// returns its path. It writes a temporary file and renames it, so a crash
// never leaves half a config.
func (f *Factory) SaveConfig(c Config) (string, error) {
	path, err := f.configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; say it, since it matters.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save config: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("save config: %w", err)
	}
	return path, nil
}

// newClient is a client of url acting as user with token.
func (f *Factory) newClient(c Config) *client.Client {
	opts := []client.Option{client.WithUser(c.User, c.Token)}
	if f.HTTP != nil {
		opts = append(opts, client.WithHTTPClient(f.HTTP))
	}
	return client.New(c.URL, opts...)
}

// Client is a client of the configured platform as the configured user;
// without credentials it says how to get them.
func (f *Factory) Client() (*client.Client, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	if c.URL == "" || c.User == "" || c.Token == "" {
		return nil, usagef("not logged in: run faas register <user> or faas login --url U --user u --token t (or set FAAS_URL, FAAS_USER and FAAS_TOKEN)")
	}
	return f.newClient(c), nil
}
