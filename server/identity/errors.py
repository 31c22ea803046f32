"""The errors of identity: users, sign-in, real-name and lawyer verification, staff."""

from __future__ import annotations

from server.platform.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "用户不存在"


class InvalidLoginCode(Unauthorized):
    code = "invalid_login_code"
    message = "登录凭证无效或已使用，请重新登录"


class AccountDisabled(Unauthorized):
    code = "account_disabled"
    message = "账户已停用"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "用户名或密码错误"


class InvalidToken(Unauthorized):
    code = "invalid_token"
    message = "登录状态无效，请重新登录"


class TokenExpired(Unauthorized):
    code = "token_expired"
    message = "登录已过期，请重新登录"


class TokenRevoked(Unauthorized):
    code = "token_revoked"
    message = "已退出登录，请重新登录"


class StaffNoIdentity(Forbidden):
    code = "staff_no_identity"
    message = "工作人员账户无需实名认证"


class InvalidIdNumber(ValidationFailed):
    code = "invalid_id_number"
    message = "身份证号有误"


class IdentityAlreadyVerified(Conflict):
    code = "identity_already_verified"
    message = "实名信息已认证，不能更改"


class IdentityMismatch(ValidationFailed):
    code = "identity_mismatch"
    message = "姓名与身份证号不一致"


class IdentityInUse(Conflict):
    code = "identity_in_use"
    message = "该身份证号已绑定其他微信账户"


class IdentityRequired(Forbidden):
    code = "identity_required"
    message = "请先完成实名认证"


class StaffNotLawyer(Forbidden):
    code = "staff_not_lawyer"
    message = "工作人员账户不能登记为律师"


class LawyerAlreadyVerified(Conflict):
    code = "lawyer_already_verified"
    message = "律师身份已认证"


class ReasonRequired(ValidationFailed):
    code = "reason_required"
    message = "驳回律师认证须说明理由"


class LawyerApplicationNotFound(NotFound):
    code = "lawyer_application_not_found"
    message = "没有该律师认证申请"


class LawyerAlreadyDecided(Conflict):
    code = "lawyer_already_decided"
    message = "该申请已处理"


class NoCourt(Forbidden):
    code = "no_court"
    message = "该账户不属于任何法院"


class OtherCourt(Forbidden):
    code = "other_court"
    message = "只能管理本院的工作人员"


class InvalidStaffRole(ValidationFailed):
    code = "invalid_staff_role"
    message = "工作人员角色只能是书记员、法官或管理员"


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "用户名已被使用"


class InvalidAssignee(ValidationFailed):
    code = "invalid_assignee"
    message = "承办人员有误"


class IdentityPending(IdentityRequired):
    """A claimed identity that face verification has not confirmed grants nothing."""

    code = "identity_pending"
    message = "实名信息尚未通过人脸核身，请先完成核身"


class IdentityNotPending(Conflict):
    code = "identity_not_pending"
    message = "没有待核身的实名信息，请先填写姓名和身份证号"


class FaceVerificationFailed(ValidationFailed):
    code = "face_verification_failed"
    message = "人脸核身未通过"


class FaceVerificationExpired(ValidationFailed):
    code = "face_verification_expired"
    message = "人脸核身已过期，请重新核身"


class FaceVerificationForged(ValidationFailed):
    code = "face_verification_invalid"
    message = "人脸核身结果无效"


class FaceVerificationReused(ValidationFailed):
    code = "face_verification_reused"
    message = "该人脸核身结果已使用，请重新核身"


class FaceVerificationMismatch(ValidationFailed):
    code = "face_verification_mismatch"
    message = "人脸核身的姓名或身份证号与所填不一致"


class InvalidPhoneCode(ValidationFailed):
    code = "invalid_phone_code"
    message = "手机号授权已失效，请重新授权"


class StaffNotFound(NotFound):
    code = "staff_not_found"
    message = "工作人员账号不存在"


class CannotDisableSelf(Conflict):
    code = "cannot_disable_self"
    message = "不能停用自己的账号"
