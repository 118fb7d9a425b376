"""The Docker-free local stack: runs the functions of template.yaml against moto and the Braze emulator.

with LocalStack.start(template=Path("template.yaml"), parameters={...}) as stack:
    stack.put_object("inbound/generic/customers.csv", data)
    records = stack.drain(timeout_s=30)
"""

from cdpbridge_local.stack.functions import (
    FunctionError,
    FunctionSpec,
    InvocationRecord,
    ScheduleTrigger,
    SqsTrigger,
)
from cdpbridge_local.stack.intrinsics import TemplateResolutionError
from cdpbridge_local.stack.resources import LOCAL_API_KEY, LocalStackError, ProvisionedResource
from cdpbridge_local.stack.stack import (
    DOCKER_HOST_ALIAS,
    DrainTimeoutError,
    DuplicateDelivery,
    EventRoute,
    LocalStack,
    UnroutableEventError,
    read_env_vars_file,
)
from cdpbridge_local.stack.template import SamTemplate, TemplateParameterError, TemplateRuleError

__all__ = [
    "DOCKER_HOST_ALIAS",
    "LOCAL_API_KEY",
    "DrainTimeoutError",
    "DuplicateDelivery",
    "EventRoute",
    "FunctionError",
    "FunctionSpec",
    "InvocationRecord",
    "LocalStack",
    "LocalStackError",
    "ProvisionedResource",
    "SamTemplate",
    "ScheduleTrigger",
    "SqsTrigger",
    "TemplateParameterError",
    "TemplateResolutionError",
    "TemplateRuleError",
    "UnroutableEventError",
    "read_env_vars_file",
]
