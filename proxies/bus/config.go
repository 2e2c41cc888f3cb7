package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"faas/proxies/secretfile"
	"faas/proxies/wire"
)

// ErrNoKey is LoadConfig's error when the process has no key and is not
// told to run insecure.
var ErrNoKey = errors.New("no bus key: set FAAS_BUS_KEY or FAAS_BUS_KEY_FILE (make keys with `faas keys`), or FAAS_BUS_INSECURE=1 for a plaintext bus open to anyone who reaches it")

// Config is one process's bus settings, read from the environment.
type Config struct {
	// Insecure runs the bus in plaintext with no authentication.
	Insecure bool `envconfig:"FAAS_BUS_INSECURE" desc:"run the bus in plaintext without authentication"`
	// Key is this process's secret key; KeyFile names a file holding it.
	Key     Secret `envconfig:"FAAS_BUS_KEY" desc:"this process's secret bus key"`
	KeyFile string `envconfig:"FAAS_BUS_KEY_FILE" desc:"file holding this process's secret bus key"`
	// DBPublicKey and JQPublicKey are the managers' public keys, which
	// their clients check in the handshake; the _FILE forms name the .pub
	// files `faas keys` writes, as Compose mounts them.
	DBPublicKey     string `envconfig:"FAAS_DB_PUBLIC_KEY" desc:"DB manager's public bus key"`
	DBPublicKeyFile string `envconfig:"FAAS_DB_PUBLIC_KEY_FILE" desc:"file holding FAAS_DB_PUBLIC_KEY"`
	JQPublicKey     string `envconfig:"FAAS_JQ_PUBLIC_KEY" desc:"JQ manager's public bus key"`
	JQPublicKeyFile string `envconfig:"FAAS_JQ_PUBLIC_KEY_FILE" desc:"file holding FAAS_JQ_PUBLIC_KEY"`
	// Clients is, for a manager, the keys it accepts: comma-separated
	// role:public-key pairs. ClientsFile names a file of such pairs, one
	// per line, added to them.
	Clients     string `envconfig:"FAAS_BUS_CLIENTS" desc:"for a manager, comma-separated role:public-key pairs it accepts"`
	ClientsFile string `envconfig:"FAAS_BUS_CLIENTS_FILE" desc:"for a manager, file of role:public-key pairs, one per line"`
	// WorkerKeyFile is, for a scaler that starts workers itself (the
	// local backend), the file of the key it hands them.
	WorkerKeyFile string `envconfig:"FAAS_WORKER_BUS_KEY_FILE" desc:"for the local scaler, file of the key it hands its workers"`

	key     Key
	clients map[string]string // public key -> role
}

// String shows the settings without the secret key: fmt prints unexported
// fields without calling their String methods, so the key inside would
// otherwise leak into any log line or error that prints a Config.
func (c Config) String() string {
	return fmt.Sprintf("{Insecure:%v PublicKey:%s KeyFile:%s DBPublicKey:%s JQPublicKey:%s Clients:%s ClientsFile:%s}",
		c.Insecure, c.key.Public, c.KeyFile, c.DBPublicKey, c.JQPublicKey, formatClients(c.clients), c.ClientsFile)
}

// GoString is String for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// LoadConfig reads the bus settings from the environment, with the key
// files they name, and checks them. Which keys a role needs is checked
// when it asks for them (Server, DialDB, DialJQ).
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("bus config: %w", err)
	}
	if c.Insecure {
		return c, nil
	}
	if err := c.load(); err != nil {
		return c, fmt.Errorf("bus config: %w", err)
	}
	return c, nil
}

func (c *Config) load() error {
	secret, err := secretfile.Resolve("FAAS_BUS_KEY", string(c.Key), c.KeyFile)
	switch {
	case err != nil:
		return err
	case secret == "":
		return ErrNoKey
	}
	if c.key, err = KeyFromSecret(secret); err != nil {
		return fmt.Errorf("bus key: %w", err)
	}
	for _, k := range []struct {
		name string
		key  *string
		file string
	}{{"FAAS_DB_PUBLIC_KEY", &c.DBPublicKey, c.DBPublicKeyFile}, {"FAAS_JQ_PUBLIC_KEY", &c.JQPublicKey, c.JQPublicKeyFile}} {
		if *k.key, err = secretfile.Resolve(k.name, *k.key, k.file); err != nil {
			return err
		}
		if *k.key != "" && !isZ85Key(*k.key) {
			return fmt.Errorf("%s %q: want 40 Z85 characters, as `faas keys` writes them", k.name, *k.key)
		}
	}
	list := c.Clients
	if c.ClientsFile != "" {
		b, err := os.ReadFile(c.ClientsFile)
		if err != nil {
			return fmt.Errorf("FAAS_BUS_CLIENTS_FILE: %w", err)
		}
		list += "," + strings.Join(strings.Fields(string(b)), ",")
	}
	if c.clients, err = parseClients(list); err != nil {
		return err
	}
	return nil
}

// parseClients reads role:public-key pairs separated by commas. A comma
// is not in the Z85 alphabet but a colon is, so only the first colon
// splits a pair.
func parseClients(list string) (map[string]string, error) {
	out := make(map[string]string)
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		role, key, ok := strings.Cut(entry, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("FAAS_BUS_CLIENTS entry %q: want role:public-key", entry)
		case !isRole(Role(role)):
			return nil, fmt.Errorf("FAAS_BUS_CLIENTS entry for role %q: want one of %v", role, Roles)
		case !isZ85Key(key):
			return nil, fmt.Errorf("FAAS_BUS_CLIENTS entry for role %s: key %q is not 40 Z85 characters", role, key)
		}
		if prev, dup := out[key]; dup && prev != role {
			return nil, fmt.Errorf("FAAS_BUS_CLIENTS gives key %q two roles, %s and %s", key, prev, role)
		}
		out[key] = role
	}
	return out, nil
}

func isRole(r Role) bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

func formatClients(clients map[string]string) string {
	pairs := make([]string, 0, len(clients))
	for key, role := range clients {
		pairs = append(pairs, role+":"+key)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// Warn logs, loudly, that the bus is plaintext, if it is. Every role calls
// it once at start.
func (c Config) Warn(log *slog.Logger) {
	if c.Insecure {
		log.Warn("FAAS_BUS_INSECURE is set: THE BUS IS PLAINTEXT AND UNAUTHENTICATED; anyone who reaches a manager's port can read and change every user's data")
	}
}

// WorkerEnv is what a scaler adds to the environment of the workers it
// starts, which otherwise inherit its own: the worker key's file in place
// of the scaler's key. A plaintext bus needs nothing, FAAS_BUS_INSECURE
// being inherited.
func (c Config) WorkerEnv() ([]string, error) {
	if c.Insecure {
		return nil, nil
	}
	if c.WorkerKeyFile == "" {
		return nil, errors.New("bus config: FAAS_WORKER_BUS_KEY_FILE is empty: a scaler that starts workers itself must hand them the worker's key")
	}
	return []string{"FAAS_BUS_KEY=", "FAAS_BUS_KEY_FILE=" + c.WorkerKeyFile, "FAAS_BUS_CLIENTS=", "FAAS_BUS_CLIENTS_FILE="}, nil
}

// Server is the security of a manager: its own key, the client keys it
// accepts with their roles, and the permission table.
func (c Config) Server() (wire.Security, error) {
	if c.Insecure {
		return wire.Security{}, nil
	}
	if len(c.clients) == 0 {
		return wire.Security{}, errors.New("bus config: FAAS_BUS_CLIENTS is empty: a manager needs the public keys of its clients, with their roles")
	}
	return wire.Security{
		PublicKey: c.key.Public, SecretKey: string(c.key.Secret),
		Clients: c.clients, Allow: Allowed,
	}, nil
}

// DialDB is the security of a client of the DB manager.
func (c Config) DialDB() (wire.Security, error) {
	return c.client("FAAS_DB_PUBLIC_KEY", c.DBPublicKey)
}

// DialJQ is the security of a client of the JQ manager.
func (c Config) DialJQ() (wire.Security, error) {
	return c.client("FAAS_JQ_PUBLIC_KEY", c.JQPublicKey)
}

func (c Config) client(name, serverKey string) (wire.Security, error) {
	if c.Insecure {
		return wire.Security{}, nil
	}
	if serverKey == "" {
		return wire.Security{}, fmt.Errorf("bus config: %s is empty: a client needs the public key of the manager it dials", name)
	}
	return wire.Security{
		PublicKey: c.key.Public, SecretKey: string(c.key.Secret), ServerKey: serverKey,
	}, nil
}
