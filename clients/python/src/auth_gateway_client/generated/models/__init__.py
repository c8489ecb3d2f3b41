"""Contains all the data models used in inputs/outputs"""

from .ai_cloud_login_inputs import AiCloudLoginInputs
from .bind_check_inputs import BindCheckInputs
from .bind_check_inputs_params_type_0 import BindCheckInputsParamsType0
from .field_error import FieldError
from .health import Health
from .health_status import HealthStatus
from .jscode_2_session_inputs import Jscode2SessionInputs
from .kind import Kind
from .login_result import LoginResult
from .login_result_data import LoginResultData
from .mini_app_auth_inputs import MiniAppAuthInputs
from .openapi_response_200 import OpenapiResponse200
from .problem import Problem
from .problem_code import ProblemCode
from .provider_list import ProviderList
from .provider_list_providers_item import ProviderListProvidersItem
from .provider_list_providers_item_input_schema import (
    ProviderListProvidersItemInputSchema,
)
from .readiness import Readiness
from .readiness_invalidation import ReadinessInvalidation
from .readiness_status import ReadinessStatus
from .readiness_store import ReadinessStore
from .readiness_store_nodes import ReadinessStoreNodes
from .readiness_store_nodes_additional_property import (
    ReadinessStoreNodesAdditionalProperty,
)
from .token_create_inputs import TokenCreateInputs
from .upstream_detail import UpstreamDetail
from .we_chat_login_inputs import WeChatLoginInputs

__all__ = (
    "AiCloudLoginInputs",
    "BindCheckInputs",
    "BindCheckInputsParamsType0",
    "FieldError",
    "Health",
    "HealthStatus",
    "Jscode2SessionInputs",
    "Kind",
    "LoginResult",
    "LoginResultData",
    "MiniAppAuthInputs",
    "OpenapiResponse200",
    "Problem",
    "ProblemCode",
    "ProviderList",
    "ProviderListProvidersItem",
    "ProviderListProvidersItemInputSchema",
    "Readiness",
    "ReadinessInvalidation",
    "ReadinessStatus",
    "ReadinessStore",
    "ReadinessStoreNodes",
    "ReadinessStoreNodesAdditionalProperty",
    "TokenCreateInputs",
    "UpstreamDetail",
    "WeChatLoginInputs",
)
