package frontend

// Credentials is what registering and rotating a token answer: the only
// time the token is ever shown. The typed client in frontend/client reads
// it, as it reads the other views (FunctionView, JobList, JobInfo, Stats)
// from the handlers' own types.
type Credentials struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}
