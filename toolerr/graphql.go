package toolerr

import (
	"fmt"

	toolbusv1 "github.com/toolbus/toolbus/gen/toolbus/v1"
)

// CodeGraphQLErrors is the code of a GraphQL answer that carries errors and
// no data.
const CodeGraphQLErrors = "upstream_graphql_errors"

// maxGraphQLDetail bounds the GraphQL error list quoted in one message: long
// enough to list several errors with their paths.
const maxGraphQLDetail = 1000

// GraphQLErrors reports a GraphQL answer with errors and no data. detail
// lists every error with its path, as the upstream worded it; status is the
// HTTP status of the answer (200 for most servers, 400 for a request the
// server refused to run).
func GraphQLErrors(tool, upstream string, status int, detail string) *ToolError {
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED,
		Code:           CodeGraphQLErrors,
		Message:        fmt.Sprintf("upstream %s answered %s with no data: %s; fix the arguments if they are at fault, retrying the same call will not help", upstream, tool, clean(detail, maxGraphQLDetail)),
		UpstreamStatus: int32(status),
	}
}

// PayloadRejected reports a mutation whose payload lists user errors (the
// userErrors { field message } convention): the upstream refused the input
// and changed nothing. detail names each field and problem.
func PayloadRejected(tool, upstream string, status int, detail string) *ToolError {
	return &ToolError{
		Class:          toolbusv1.ErrorClass_ERROR_CLASS_UPSTREAM_REJECTED,
		Code:           CodeRejected,
		Message:        fmt.Sprintf("upstream %s refused %s: %s; fix the arguments and call again", upstream, tool, clean(detail, maxGraphQLDetail)),
		UpstreamStatus: int32(status),
	}
}
