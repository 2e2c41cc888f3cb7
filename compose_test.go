package main

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"faas/dbmanager"
	"faas/dbmanager/dbmanagertest"
	"faas/frontend"
	"faas/frontend/client"
	"faas/internal/cli"
	"faas/jqmanager"
	"faas/proxies/bus"
	"faas/scaler"
	"faas/worker"
)

// composeFile is the part of docker-compose.yml the roles depend on.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Networks    []string          `yaml:"networks"`
		User        string            `yaml:"user"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// TestComposeFile checks docker-compose.yml against the code, which
// `docker compose config` cannot: every variable it sets is one its role
// reads (a typo would be ignored and the role would run on a default),
// every *_FILE names a secret mounted in that service, every secret file
// is one that `faas keys` writes or README tells the operator to make,
// and every role's image is the one docker-bake.hcl builds.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)

	logs := reflect.TypeFor[cli.LogConfig]()
	busVars := reflect.TypeFor[bus.Config]()
	reads := map[string][]reflect.Type{
		"dbmanager": {logs, busVars, reflect.TypeFor[dbmanager.Config]()},
		"jqmanager": {logs, busVars, reflect.TypeFor[jqmanager.Config]()},
		"frontend":  {logs, busVars, reflect.TypeFor[frontend.Config]()},
		"worker":    {logs, busVars, reflect.TypeFor[worker.Config]()},
		// The local backend's workers inherit the scaler's environment.
		"scaler": {logs, busVars, reflect.TypeFor[scaler.Config](), reflect.TypeFor[worker.Config]()},
	}

	bake, err := os.ReadFile("docker-bake.hcl")
	require.NoError(t, err)
	registry := regexp.MustCompile(`variable "REGISTRY" \{\s*default = "([^"]+)"`).FindSubmatch(bake)
	require.NotNil(t, registry, "docker-bake.hcl names a default REGISTRY")
	tag := regexp.MustCompile(`variable "TAG" \{\s*default = "([^"]+)"`).FindSubmatch(bake)
	require.NotNil(t, tag, "docker-bake.hcl names a default TAG")

	// What the operator has in ./secrets: a keyring as `faas keys` writes
	// it, and the two files README's commands make.
	keys := t.TempDir()
	ring, err := bus.NewKeyring()
	require.NoError(t, err)
	require.NoError(t, ring.Write(keys))
	made := map[string]bool{"secret_key": true, "admin_token": true}
	for name, s := range cf.Secrets {
		dir, file := filepath.Split(s.File)
		require.Equal(t, "./secrets/", dir, "secret %s comes from ./secrets", name)
		if !made[file] {
			_, err := os.Stat(filepath.Join(keys, file))
			require.NoError(t, err, "secret %s: faas keys must write %s", name, file)
		}
	}

	for role, types := range reads {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			svc, ok := cf.Services[role]
			require.True(t, ok, "the Compose file runs the %s role", role)
			want := string(registry[1]) + "/faas-" + role + ":" + string(tag[1])
			require.Equal(t, want, expandDefaults(svc.Image), "the image docker-bake.hcl builds for %s", role)
			require.Contains(t, string(bake), `"${REGISTRY}/faas-`+role+`:${TAG}"`)

			known := envVars(types...)
			for name, value := range svc.Environment {
				require.True(t, known[name], "%s sets %s, which the %s role does not read", role, name, role)
				if !strings.HasSuffix(name, "_FILE") {
					continue
				}
				secret, ok := strings.CutPrefix(value, "/run/secrets/")
				require.True(t, ok, "%s=%s: Compose mounts secrets under /run/secrets", name, value)
				require.Contains(t, svc.Secrets, secret, "%s names secret %s, which %s does not mount", name, secret, role)
			}
			for _, s := range svc.Secrets {
				require.Contains(t, cf.Secrets, s, "%s mounts secret %s, which is not defined", role, s)
			}
			if role == "dbmanager" || role == "jqmanager" {
				require.True(t, strings.HasPrefix(svc.Environment["FAAS_LISTEN"], "tcp://*:"),
					"a manager must listen on every interface to be reached over the Compose network")
			}
		})
	}
	require.Equal(t, "0:0", cf.Services["worker"].User, "the worker runs as root for the sandboxes' full fences")
	require.Equal(t, []string{"store"}, cf.Services["mongo"].Networks, "MongoDB is on the store network alone")
	require.True(t, slices.Contains(cf.Services["dbmanager"].Networks, "store"))
	for name, svc := range cf.Services {
		if name != "mongo" && name != "dbmanager" {
			require.NotContains(t, svc.Networks, "store", "%s must not reach MongoDB", name)
		}
	}
}

// TestComposeWiring runs the roles as separate processes with the
// environment docker-compose.yml gives them, every key, the secrets' key
// and the admin token read from files as Compose mounts them, and nothing
// inline: the file's settings are enough for the reference flow, a
// function secret and the operator's /stats. The host names become
// loopback ports, and the embedded store stands in for MongoDB, which the
// store suite covers.
func TestComposeWiring(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for _, tc := range []struct {
		name string
		// workers is the role that runs the jobs: workers scaled by
		// Compose, or the autoscale profile's scaler starting its own.
		workers string
	}{
		{"scaled workers", "worker"},
		{"autoscale profile", "scaler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			composeFlow(t, cf, tc.workers)
		})
	}
}

// composeFlow runs the platform with workers from the given role, as
// docker-compose.yml configures it, and the reference flow on it.
func composeFlow(t *testing.T, cf composeFile, workers string) {
	t.Helper()
	c := newCluster(t)

	// ./secrets as the README's commands leave it.
	secrets := filepath.Join(c.dir, "secrets")
	require.NoError(t, c.keys.Write(secrets))
	adminToken := "operator-" + strings.Repeat("7", 24)
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "secret_key"), []byte(dbmanagertest.SecretKey()+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "admin_token"), []byte(adminToken+"\n"), 0o600))
	mounted := make(map[string]string) // /run/secrets/<name> -> the file
	for name, s := range cf.Secrets {
		mounted["/run/secrets/"+name] = filepath.Join(secrets, filepath.Base(s.File))
	}
	hosts := strings.NewReplacer(
		"tcp://dbmanager:27444", c.dbURL, "tcp://*:27444", c.dbURL,
		"tcp://jqmanager:27445", c.jqURL, "tcp://*:27445", c.jqURL)
	composeEnv := func(role string) []string {
		// The cluster hands every role its keys inline; blank them, so
		// that the files are the only source.
		env := []string{"FAAS_BUS_KEY=", "FAAS_DB_PUBLIC_KEY=", "FAAS_JQ_PUBLIC_KEY=", "FAAS_BUS_CLIENTS="}
		for k, v := range cf.Services[role].Environment {
			switch {
			case strings.HasPrefix(v, "/run/secrets/"):
				require.Contains(t, mounted, v)
				v = mounted[v]
			case strings.HasPrefix(v, "mongodb://"):
				v = ""
			default:
				v = hosts.Replace(v)
			}
			env = append(env, k+"="+v)
		}
		return env
	}
	for _, role := range []string{"dbmanager", "jqmanager", workers, "frontend"} {
		c.start(role, role, composeEnv(role)...)
	}
	c.waitReady()

	alice := c.register(t, "alice")
	r := alice.do(http.MethodPost, "/u/alice/fn/keyed",
		`{"src": "(a, b) => a + b + faas.env.API_KEY.length", "secrets": {"API_KEY": "0123456789"}}`,
		"Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, r.Status, "a secret needs the DB manager's FAAS_SECRET_KEY_FILE: %s", r.Res)
	r = alice.do(http.MethodPost, "/u/alice/fn/keyed/run?wait=30s", "[4,5]")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Res)
	require.JSONEq(t, "19", string(r.Res))

	operator := &api{Client: client.New(c.http, client.WithHTTPClient(c.httpClient()), client.WithUser("", adminToken)), t: t}
	r = operator.do(http.MethodGet, "/stats", "")
	require.Equal(t, http.StatusOK, r.Status, "the operator's token comes from FAAS_ADMIN_TOKEN_FILE: %s", r.Res)
}

// loadCompose parses docker-compose.yml.
func loadCompose(t testing.TB) composeFile {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	require.NoError(t, err)
	var cf composeFile
	require.NoError(t, yaml.Unmarshal(b, &cf), "docker-compose.yml must parse")
	return cf
}

// expandDefaults replaces each ${VAR:-default} with its default, as
// Compose does when VAR is unset.
func expandDefaults(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

// envVars is the set of variables the config structs read, from their
// envconfig tags.
func envVars(types ...reflect.Type) map[string]bool {
	out := make(map[string]bool)
	for _, typ := range types {
		for f := range typ.Fields() {
			if name := f.Tag.Get("envconfig"); name != "" && f.Tag.Get("ignored") != "true" {
				out[name] = true
			}
		}
	}
	return out
}
