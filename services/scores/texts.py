"""The Vietnamese words the pages and the downloads use for reasons, statuses and channels."""

from __future__ import annotations

from collections.abc import Mapping

from services.scores.formulas import Reason

REASONS: Mapping[Reason, str] = {
    Reason.ON_TIME: "Giải quyết trước hạn, đúng hạn",
    Reason.IN_TIME: "Đang giải quyết trong hạn",
    Reason.LATE: "Giải quyết quá hạn",
    Reason.OVERDUE: "Đang giải quyết, đã quá hạn",
    Reason.SUPPLEMENTS: "Yêu cầu bổ sung từ 2 lần trở lên (tính quá hạn)",
    Reason.NO_DUE_DATE: "Không có ngày hẹn trả và thời hạn giải quyết",
    Reason.SYNCED: "Đã đồng bộ lên Cổng DVCQG",
    Reason.NOT_SYNCED: "Chưa đồng bộ lên Cổng DVCQG",
    Reason.ONLINE: "Nộp trực tuyến",
    Reason.NOT_ONLINE: "Không nộp trực tuyến",
    Reason.ONLINE_NO_RESULT: "Nộp trực tuyến nhưng chưa có kết quả điện tử",
    Reason.PAID: "Đã thanh toán trực tuyến",
    Reason.NOT_PAID: "Chưa thanh toán trực tuyến",
    Reason.RESULT: "Có kết quả giải quyết điện tử",
    Reason.NO_RESULT: "Chưa có kết quả giải quyết điện tử",
    Reason.ATTACHED: "Có thành phần hồ sơ số hóa",
    Reason.NOT_ATTACHED: "Không có tệp thành phần hồ sơ",
    Reason.ATTACHED_NO_RESULT: "Có tệp thành phần nhưng chưa có kết quả điện tử",
    Reason.DIGITISED: "Có sử dụng lại dữ liệu số hóa",
    Reason.NOT_DIGITISED: "Không sử dụng lại dữ liệu số hóa",
    Reason.FROM_REPOSITORY: "Có thành phần lấy từ kho dữ liệu",
    Reason.NOT_FROM_REPOSITORY: "Không có thành phần lấy từ kho dữ liệu",
    Reason.VNEID: "Tài khoản xác thực VNeID",
    Reason.NOT_VNEID: "Chưa xác thực VNeID",
    Reason.FINISHED: "Đã giải quyết xong",
    Reason.SIGNED: "Có chữ ký số hợp lệ",
    Reason.NOT_SIGNED: "Không có chữ ký số hợp lệ",
}

STATUSES: Mapping[int, str] = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}

CHANNELS: Mapping[int, str] = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Bưu chính công ích"}

THRESHOLDS: Mapping[str, str] = {
    "1.4": "Điểm tối đa khi đạt 100%",
    "2.1": "Điểm tối đa khi đạt 100%",
    "3.3": "Điểm tối đa từ 50% (quy đổi điểm của nhóm chưa công bố)",
    "3.6": "Điểm tối đa khi đạt 100%",
    "4.1": "Điểm tối đa khi đạt 100%",
    "4.2": "Điểm tối đa khi đạt 100%",
    "4.3": "Điểm tối đa từ 80%",
    "4.4": "Điểm tối đa khi đạt 100%",
    "4.5b": "Điểm tối đa khi đạt 100%",
    "2.2": "Không tính điểm",
    "signature": "Chưa có quy định tính điểm",
}

COLUMNS = (
    "Mã hồ sơ",
    "Mã đơn vị",
    "Mã TTHC",
    "Trạng thái",
    "Kênh",
    "Ngày tiếp nhận",
    "Ngày hẹn trả",
    "Ngày kết thúc xử lý",
    "Đã đồng bộ",
    "Được tính",
    "Lý do",
)
