// Package bus is who may talk on the platform's ZeroMQ bus: the roles, the
// one table of what each role may call, the CURVE keys that prove a role,
// and the settings that turn them into wire options for each process.
//
// Each process has a keypair of its own. A manager accepts only the public
// keys it was given, each with a role (FAAS_BUS_CLIENTS), and answers a
// call its caller's role may not make with code forbidden, doing nothing.
// A client checks the manager's public key in the handshake, so it cannot
// be fooled by a stranger on the manager's address.
package bus

import (
	"slices"
	"sort"
	"strings"

	"faas/proxies/dbproxy"
	"faas/proxies/jqproxy"
)

// Role is what a bus key may do.
type Role string

// The roles. The managers are roles too: the JQ manager is a client of
// the DB manager, and each manager's own key is what clients check.
const (
	DBManager Role = "dbmanager"
	JQManager Role = "jqmanager"
	Frontend  Role = "frontend"
	Worker    Role = "worker"
	Scaler    Role = "scaler"
	// Admin may call every method, maintenance included: it is for
	// operators' tools, never for a running component.
	Admin Role = "admin"
)

// Roles lists every role, managers first.
var Roles = []Role{DBManager, JQManager, Frontend, Worker, Scaler, Admin}

// calls is the permission table: for each method, the roles that may call
// it besides Admin. It lists what each component's code really calls, and
// nothing more; a method missing here is Admin's alone, so a new method is
// closed until someone decides who needs it. PurgeJobs is missing on
// purpose: the DB manager purges in-process, and operators use the admin
// key.
var calls = map[string][]Role{
	dbproxy.MethodPing:         {Frontend},
	dbproxy.MethodCreateUser:   {Frontend},
	dbproxy.MethodUserByToken:  {Frontend},
	dbproxy.MethodDeleteUser:   {Frontend},
	dbproxy.MethodSetTokenHash: {Frontend},
	dbproxy.MethodBilledTime:   {Frontend},
	dbproxy.MethodPutFunction:  {Frontend},
	// Workers read a function's current version for faas.call.
	dbproxy.MethodFunction:       {Frontend, Worker},
	dbproxy.MethodVersion:        {Worker},
	dbproxy.MethodFunctions:      {Frontend},
	dbproxy.MethodDeleteFunction: {Frontend},
	dbproxy.MethodCreateHook:     {Frontend},
	dbproxy.MethodHookByHash:     {Frontend},
	dbproxy.MethodHooks:          {Frontend},
	dbproxy.MethodDeleteHook:     {Frontend},
	dbproxy.MethodPutSchedule:    {Frontend},
	dbproxy.MethodSchedule:       {Frontend},
	dbproxy.MethodDeleteSchedule: {Frontend},
	dbproxy.MethodSchedules:      {JQManager},
	dbproxy.MethodScheduleFired:  {JQManager},
	dbproxy.MethodSubscribe:      {Frontend},
	dbproxy.MethodUnsubscribe:    {Frontend},
	dbproxy.MethodSubscriptions:  {Frontend, JQManager},
	dbproxy.MethodCreateJob:      {JQManager},
	dbproxy.MethodJob:            {Frontend, JQManager},
	dbproxy.MethodJobs:           {Frontend},
	dbproxy.MethodFailedJobs:     {Frontend},
	dbproxy.MethodDeleteJob:      {Frontend},
	dbproxy.MethodStartJob:       {JQManager},
	dbproxy.MethodRequeueJob:     {JQManager},
	dbproxy.MethodCompleteJob:    {JQManager},
	dbproxy.MethodCreateJobs:     {JQManager},
	dbproxy.MethodStartJobs:      {JQManager},
	dbproxy.MethodCompleteJobs:   {JQManager},
	dbproxy.MethodPendingJobs:    {JQManager},
	dbproxy.MethodUsage:          {Frontend},
	dbproxy.MethodUserCount:      {Frontend},
	dbproxy.MethodFinishedCounts: {JQManager},

	jqproxy.MethodSubmit:     {Frontend},
	jqproxy.MethodPublish:    {Frontend},
	jqproxy.MethodWait:       {Frontend},
	jqproxy.MethodEvents:     {Frontend},
	jqproxy.MethodForget:     {Frontend},
	jqproxy.MethodForgetUser: {Frontend},
	jqproxy.MethodRevoke:     {Frontend},
	jqproxy.MethodReschedule: {Frontend},
	jqproxy.MethodFnChanged:  {Frontend},
	jqproxy.MethodStats:      {Frontend, Scaler},
	jqproxy.MethodNext:       {Worker},
	jqproxy.MethodWithdraw:   {Worker},
	jqproxy.MethodComplete:   {Worker},
	jqproxy.MethodRenew:      {Worker},
	jqproxy.MethodRelease:    {Worker},
	jqproxy.MethodAppendLogs: {Worker},
	// SubmitChild is fenced by a lease the worker holds: it is not the
	// power to submit for any user that Submit would be.
	jqproxy.MethodSubmitChild: {Worker},
	// PublishChild is fenced the same way, for faas.publish.
	jqproxy.MethodPublishChild: {Worker},
	jqproxy.MethodLogs:         {Frontend},
	jqproxy.MethodStatus:       {Frontend},
}

// Allowed reports whether role may call method.
func Allowed(role, method string) bool {
	return Role(role) == Admin || slices.Contains(calls[method], Role(role))
}

// Methods lists, sorted, the methods role may call on the manager whose
// methods start with prefix ("db." or "jq."); for the README and tests.
func Methods(role Role, prefix string) []string {
	var out []string
	for m, roles := range calls {
		if strings.HasPrefix(m, prefix) && (role == Admin || slices.Contains(roles, role)) {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// clientsOf lists the roles a manager accepts: those that may call one of
// its methods. The scaler, say, never gets through the DB manager's
// handshake at all.
func clientsOf(manager Role) []Role {
	prefix := map[Role]string{DBManager: "db.", JQManager: "jq."}[manager]
	var out []Role
	for _, r := range Roles {
		if len(Methods(r, prefix)) > 0 {
			out = append(out, r)
		}
	}
	return out
}
