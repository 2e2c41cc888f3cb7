package bus

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	zmq "github.com/pebbe/zmq4"
)

// Secret is a CURVE secret key. It prints and logs as a placeholder, so a
// Config or Key dumped into a log or an error message leaks nothing.
type Secret string

func (Secret) String() string { return "[secret]" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[secret]") }

// GoString keeps %#v from printing the key.
func (Secret) GoString() string { return "[secret]" }

// Key is a CURVE keypair, Z85-encoded (40 characters each).
type Key struct {
	Public string
	Secret Secret
}

// NewKey makes a fresh keypair.
func NewKey() (Key, error) {
	pub, sec, err := zmq.NewCurveKeypair()
	if err != nil {
		return Key{}, fmt.Errorf("new curve keypair: %w", err)
	}
	return Key{Public: pub, Secret: Secret(sec)}, nil
}

// KeyFromSecret rebuilds a keypair from its secret key.
func KeyFromSecret(secret string) (Key, error) {
	secret = strings.TrimSpace(secret)
	if !isZ85Key(secret) {
		return Key{}, fmt.Errorf("a secret key of %d characters: want 40 Z85 characters, as `faas keys` writes them", len(secret))
	}
	pub, err := zmq.AuthCurvePublic(secret)
	if err != nil {
		return Key{}, fmt.Errorf("derive public key: %w", err)
	}
	return Key{Public: pub, Secret: Secret(secret)}, nil
}

// z85 is the Z85 alphabet (ZeroMQ RFC 32).
const z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

func isZ85Key(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune(z85, c) {
			return false
		}
	}
	return true
}

// Keyring is one key per role: a whole platform's keys, as `faas keys`
// writes them and `faas up` makes them for its own processes.
type Keyring map[Role]Key

// NewKeyring makes a key for every role.
func NewKeyring() (Keyring, error) {
	ring := make(Keyring, len(Roles))
	for _, r := range Roles {
		k, err := NewKey()
		if err != nil {
			return nil, err
		}
		ring[r] = k
	}
	return ring, nil
}

// Config is the bus settings of role's process, in memory.
func (ring Keyring) Config(role Role) Config {
	c := Config{
		key:         ring[role],
		DBPublicKey: ring[DBManager].Public,
		JQPublicKey: ring[JQManager].Public,
	}
	if role == DBManager || role == JQManager {
		c.clients = make(map[string]string)
		for _, r := range clientsOf(role) {
			c.clients[ring[r].Public] = string(r)
		}
	}
	return c
}

// Env is the environment of role's process: its secret key inline, the
// managers' public keys and, for a manager, the keys it accepts. It sets
// every bus variable, empty where unused, so that a child given it keeps
// nothing of its parent's keys.
func (ring Keyring) Env(role Role) []string {
	return ring.env(role, string(ring[role].Secret), "")
}

func (ring Keyring) env(role Role, key, keyFile string) []string {
	c := ring.Config(role)
	return []string{
		"FAAS_BUS_KEY=" + key, "FAAS_BUS_KEY_FILE=" + keyFile,
		"FAAS_DB_PUBLIC_KEY=" + c.DBPublicKey, "FAAS_JQ_PUBLIC_KEY=" + c.JQPublicKey,
		"FAAS_DB_PUBLIC_KEY_FILE=", "FAAS_JQ_PUBLIC_KEY_FILE=",
		"FAAS_BUS_CLIENTS=" + formatClients(c.clients), "FAAS_BUS_CLIENTS_FILE=",
	}
}

// fileEnv is the environment of role's process with its key in a file in
// dir; a scaler also gets the worker's, for the workers it starts itself.
func (ring Keyring) fileEnv(role Role, dir string) []string {
	keyFile := func(r Role) string { return filepath.Join(dir, string(r)+".key") }
	env := ring.env(role, "", keyFile(role))
	if role == Scaler {
		env = append(env, "FAAS_WORKER_BUS_KEY_FILE="+keyFile(Worker))
	}
	return env
}

// Write stores the keyring in dir, which it creates (mode 0700): for each
// role, <role>.key holding the secret key (mode 0600), <role>.pub the
// public key, and <role>.env the environment for that role's process,
// which names the key file rather than holding the key; for each manager,
// <role>.clients, the keys it accepts as FAAS_BUS_CLIENTS_FILE reads them,
// for deployments that hand processes files rather than variables
// (Compose and Kubernetes secrets).
func (ring Keyring) Write(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	for _, r := range Roles {
		keyFile := filepath.Join(abs, string(r)+".key")
		type file struct {
			name, text string
			mode       os.FileMode
		}
		files := []file{
			{keyFile, string(ring[r].Secret) + "\n", 0o600},
			{filepath.Join(abs, string(r)+".pub"), ring[r].Public + "\n", 0o644},
			{filepath.Join(abs, string(r)+".env"), strings.Join(ring.fileEnv(r, abs), "\n") + "\n", 0o644},
		}
		if r == DBManager || r == JQManager {
			lines := strings.ReplaceAll(formatClients(ring.Config(r).clients), ",", "\n")
			files = append(files, file{filepath.Join(abs, string(r)+".clients"), lines + "\n", 0o644})
		}
		for _, f := range files {
			if err := writeNew(f.name, f.text, f.mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeNew creates a file with mode from the start (so a secret is never
// readable by others, even briefly) and refuses to overwrite one: keys
// in use are replaced on purpose, not by a second run.
func writeNew(name, text string, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
