"""Reference tables the synthetic generator draws from, kept as plain data.

Synthetic applicants are only useful if they look like real ones to the code under test: a
USCC must carry a real GB/T 2260 division, an ID number a real address code, a company an
industry from GB/T 4754-2017. The tables below are small, hand-picked subsets of those
standards — enough variety for tests, demos and benchmarks, not a full copy.

Weights are relative and approximate (how common a kind of small business or a province is
among small-business borrowers), chosen to give plausible mixtures, not statistics to quote.
``base_risk`` is an additive log-odds shift of the default probability for the industry.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------------------
# Industries, GB/T 4754-2017 (国民经济行业分类): sections A-T and some 2-digit divisions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndustryDivision:
    """A 2-digit division of GB/T 4754-2017 as the generator uses it."""

    code: str
    section: str
    name_zh: str
    name_en: str
    weight: float
    base_risk: float
    name_words: tuple[str, ...]
    """Words that end a company name in this trade (``商贸``, ``餐饮管理``, ...)."""


@dataclass(frozen=True, slots=True)
class IndustrySection:
    code: str
    name_zh: str
    name_en: str
    divisions: tuple[IndustryDivision, ...]


def _d(
    code: str,
    section: str,
    zh: str,
    en: str,
    weight: float,
    risk: float,
    *words: str,
) -> IndustryDivision:
    return IndustryDivision(code, section, zh, en, weight, risk, words)


# fmt: off
INDUSTRY_SECTIONS: tuple[IndustrySection, ...] = (
    IndustrySection("A", "农、林、牧、渔业",
                    "Agriculture, forestry, animal husbandry and fishery", (
        _d("01", "A", "农业", "Farming", 1.6, 0.30, "农业科技", "农业发展", "种植"),
        _d("03", "A", "畜牧业", "Animal husbandry", 0.8, 0.40, "养殖", "牧业"),
        _d("04", "A", "渔业", "Fishery", 0.3, 0.40, "水产养殖", "渔业"),
        _d("05", "A", "农、林、牧、渔专业及辅助性活动", "Support activities for agriculture", 0.4,
           0.25, "农机服务", "农业服务"),
    )),
    IndustrySection("B", "采矿业", "Mining", (
        _d("06", "B", "煤炭开采和洗选业", "Mining and washing of coal", 0.05, 0.50, "煤业"),
        _d("10", "B", "非金属矿采选业", "Mining of non-metallic minerals", 0.15, 0.45, "矿业",
           "石材"),
    )),
    IndustrySection("C", "制造业", "Manufacturing", (
        _d("13", "C", "农副食品加工业", "Processing of food from agricultural products", 1.2, 0.10,
           "食品", "粮油"),
        _d("14", "C", "食品制造业", "Manufacture of foods", 1.0, 0.05, "食品", "食品科技"),
        _d("17", "C", "纺织业", "Manufacture of textiles", 0.8, 0.25, "纺织", "织造"),
        _d("18", "C", "纺织服装、服饰业", "Manufacture of apparel and clothing accessories", 1.2,
           0.25, "服饰", "服装"),
        _d("21", "C", "家具制造业", "Manufacture of furniture", 0.6, 0.20, "家具", "家居"),
        _d("29", "C", "橡胶和塑料制品业", "Manufacture of rubber and plastics products", 0.9,
           0.15, "塑胶", "塑料制品"),
        _d("33", "C", "金属制品业", "Manufacture of metal products", 1.1, 0.15, "五金",
           "金属制品"),
        _d("34", "C", "通用设备制造业", "Manufacture of general purpose machinery", 1.0, 0.05,
           "机械", "机械设备"),
        _d("38", "C", "电气机械和器材制造业", "Manufacture of electrical machinery and equipment",
           0.9, 0.00, "电气", "电器"),
        _d("39", "C", "计算机、通信和其他电子设备制造业",
           "Manufacture of computers, communication and other electronic equipment", 1.0, 0.00,
           "电子", "电子科技"),
    )),
    IndustrySection("D", "电力、热力、燃气及水生产和供应业",
                    "Electricity, heat, gas and water production and supply", (
        _d("44", "D", "电力、热力生产和供应业", "Electricity and heat production and supply", 0.3,
           -0.30, "新能源", "电力工程"),
        _d("45", "D", "燃气生产和供应业", "Gas production and supply", 0.1, -0.20, "燃气"),
    )),
    IndustrySection("E", "建筑业", "Construction", (
        _d("47", "E", "房屋建筑业", "Building construction", 0.9, 0.35, "建筑工程", "建设"),
        _d("48", "E", "土木工程建筑业", "Civil engineering", 0.7, 0.35, "市政工程", "路桥工程"),
        _d("49", "E", "建筑安装业", "Construction installation", 0.7, 0.25, "安装工程",
           "机电安装"),
        _d("50", "E", "建筑装饰、装修和其他建筑业",
           "Building decoration, renovation and other construction", 1.8, 0.30, "装饰工程",
           "装饰设计"),
    )),
    IndustrySection("F", "批发和零售业", "Wholesale and retail trade", (
        _d("51", "F", "批发业", "Wholesale trade", 9.0, 0.05, "商贸", "贸易", "供应链管理"),
        _d("52", "F", "零售业", "Retail trade", 10.0, 0.15, "商贸", "百货", "便利店"),
    )),
    IndustrySection("G", "交通运输、仓储和邮政业", "Transport, storage and postal services", (
        _d("54", "G", "道路运输业", "Road transport", 1.8, 0.30, "物流", "运输"),
        _d("58", "G", "多式联运和运输代理业", "Multimodal transport and freight forwarding", 0.6,
           0.20, "国际货运代理", "物流"),
        _d("59", "G", "装卸搬运和仓储业", "Loading, unloading and warehousing", 0.5, 0.20,
           "仓储", "仓储服务"),
    )),
    IndustrySection("H", "住宿和餐饮业", "Accommodation and catering", (
        _d("61", "H", "住宿业", "Accommodation", 0.8, 0.35, "酒店管理", "宾馆"),
        _d("62", "H", "餐饮业", "Catering", 4.0, 0.40, "餐饮管理", "餐饮"),
    )),
    IndustrySection("I", "信息传输、软件和信息技术服务业",
                    "Information transmission, software and IT services", (
        _d("64", "I", "互联网和相关服务", "Internet and related services", 1.2, 0.10,
           "网络科技", "信息科技"),
        _d("65", "I", "软件和信息技术服务业", "Software and IT services", 2.5, -0.05,
           "软件", "信息技术", "科技"),
    )),
    IndustrySection("J", "金融业", "Finance", (
        _d("69", "J", "其他金融业", "Other financial activities", 0.05, 0.60, "商务咨询"),
    )),
    IndustrySection("K", "房地产业", "Real estate", (
        _d("70", "K", "房地产业", "Real estate", 0.9, 0.45, "房地产经纪", "物业管理"),
    )),
    IndustrySection("L", "租赁和商务服务业", "Leasing and business services", (
        _d("71", "L", "租赁业", "Leasing", 0.6, 0.20, "设备租赁", "租赁"),
        _d("72", "L", "商务服务业", "Business services", 5.0, 0.15, "企业管理咨询",
           "商务服务", "广告", "人力资源"),
    )),
    IndustrySection("M", "科学研究和技术服务业", "Scientific research and technical services", (
        _d("74", "M", "专业技术服务业", "Professional technical services", 1.2, -0.05,
           "工程技术", "检测技术"),
        _d("75", "M", "科技推广和应用服务业", "Technology promotion and application services",
           2.2, 0.00, "科技", "生物科技", "新材料科技"),
    )),
    IndustrySection("N", "水利、环境和公共设施管理业",
                    "Water conservancy, environment and public facilities management", (
        _d("77", "N", "生态保护和环境治理业", "Ecological protection and environmental management",
           0.3, 0.05, "环保科技", "环境工程"),
        _d("78", "N", "公共设施管理业", "Public facilities management", 0.2, 0.00, "园林绿化"),
    )),
    IndustrySection("O", "居民服务、修理和其他服务业",
                    "Residents' services, repair and other services", (
        _d("80", "O", "居民服务业", "Residents' services", 1.5, 0.30, "家政服务", "美容美发"),
        _d("81", "O", "机动车、电子产品和日用产品修理业",
           "Repair of motor vehicles, electronics and household goods", 0.8, 0.25, "汽车维修",
           "维修服务"),
    )),
    IndustrySection("P", "教育", "Education", (
        _d("83", "P", "教育", "Education", 0.6, 0.35, "教育科技", "培训"),
    )),
    IndustrySection("Q", "卫生和社会工作", "Health and social work", (
        _d("84", "Q", "卫生", "Health", 0.4, 0.00, "医疗科技", "诊所管理"),
        _d("85", "Q", "社会工作", "Social work", 0.1, 0.10, "养老服务"),
    )),
    IndustrySection("R", "文化、体育和娱乐业", "Culture, sports and entertainment", (
        _d("86", "R", "新闻和出版业", "News and publishing", 0.1, 0.15, "文化传播"),
        _d("88", "R", "文化艺术业", "Culture and arts", 0.8, 0.25, "文化传媒", "文化艺术"),
        _d("89", "R", "体育", "Sports", 0.3, 0.30, "体育文化", "健身"),
        _d("90", "R", "娱乐业", "Entertainment", 0.3, 0.45, "娱乐", "文化娱乐"),
    )),
    IndustrySection("S", "公共管理、社会保障和社会组织",
                    "Public administration, social security and social organisations", (
        _d("95", "S", "群众团体、社会团体和其他成员组织",
           "Mass organisations, social groups and other membership organisations", 0.0, 0.0,
           "协会"),
    )),
    IndustrySection("T", "国际组织", "International organisations", (
        _d("97", "T", "国际组织", "International organisations", 0.0, 0.0, "国际组织"),
    )),
)
# fmt: on
"""Sections A-T. S and T carry zero weight: they do not borrow as small businesses."""

INDUSTRY_DIVISIONS: tuple[IndustryDivision, ...] = tuple(
    d for s in INDUSTRY_SECTIONS for d in s.divisions
)

# --------------------------------------------------------------------------------------
# Administrative divisions, GB/T 2260: every province, one to three cities, a few districts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class City:
    """A prefecture-level city; for the four municipalities, the municipality itself."""

    code: str
    name: str
    districts: tuple[District, ...]

    @property
    def short_name(self) -> str:
        """The name used at the start of a company name: ``深圳`` for ``深圳市``."""
        return self.name.removesuffix("市")


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    name: str
    weight: float
    cities: tuple[City, ...]

    @property
    def is_municipality(self) -> bool:
        return self.code in {"11", "12", "31", "50"}


def _city(code: str, name: str, *districts: tuple[str, str]) -> City:
    return City(code, name, tuple(District(c, n) for c, n in districts))


# fmt: off
PROVINCES: tuple[Province, ...] = (
    Province("11", "北京市", 4.0, (
        _city("110000", "北京市", ("110101", "东城区"), ("110102", "西城区"), ("110105", "朝阳区"),
              ("110106", "丰台区"), ("110108", "海淀区"), ("110114", "昌平区")),
    )),
    Province("12", "天津市", 1.5, (
        _city("120000", "天津市", ("120101", "和平区"), ("120103", "河西区"), ("120104", "南开区"),
              ("120116", "滨海新区")),
    )),
    Province("13", "河北省", 4.0, (
        _city("130100", "石家庄市", ("130102", "长安区"), ("130104", "桥西区"),
              ("130105", "新华区")),
        _city("130200", "唐山市", ("130202", "路南区"), ("130203", "路北区")),
        _city("130600", "保定市", ("130602", "竞秀区"), ("130606", "莲池区")),
    )),
    Province("14", "山西省", 1.6, (
        _city("140100", "太原市", ("140105", "小店区"), ("140106", "迎泽区"),
              ("140107", "杏花岭区")),
        _city("140200", "大同市", ("140213", "平城区"),),
    )),
    Province("15", "内蒙古自治区", 1.2, (
        _city("150100", "呼和浩特市", ("150102", "新城区"), ("150103", "回民区"),
              ("150105", "赛罕区")),
        _city("150200", "包头市", ("150203", "昆都仑区"),),
    )),
    Province("21", "辽宁省", 2.3, (
        _city("210100", "沈阳市", ("210102", "和平区"), ("210103", "沈河区"), ("210106", "铁西区")),
        _city("210200", "大连市", ("210202", "中山区"), ("210204", "沙河口区")),
    )),
    Province("22", "吉林省", 1.2, (
        _city("220100", "长春市", ("220102", "南关区"), ("220104", "朝阳区"), ("220105", "二道区")),
        _city("220200", "吉林市", ("220202", "昌邑区"),),
    )),
    Province("23", "黑龙江省", 1.3, (
        _city("230100", "哈尔滨市", ("230102", "道里区"), ("230103", "南岗区"),
              ("230104", "道外区")),
    )),
    Province("31", "上海市", 4.5, (
        _city("310000", "上海市", ("310101", "黄浦区"), ("310104", "徐汇区"), ("310105", "长宁区"),
              ("310106", "静安区"), ("310107", "普陀区"), ("310112", "闵行区"),
              ("310115", "浦东新区")),
    )),
    Province("32", "江苏省", 9.0, (
        _city("320100", "南京市", ("320102", "玄武区"), ("320105", "建邺区"), ("320106", "鼓楼区")),
        _city("320200", "无锡市", ("320211", "滨湖区"), ("320213", "梁溪区")),
        _city("320500", "苏州市", ("320505", "虎丘区"), ("320506", "吴中区"), ("320508", "姑苏区")),
    )),
    Province("33", "浙江省", 7.5, (
        _city("330100", "杭州市", ("330102", "上城区"), ("330106", "西湖区"), ("330108", "滨江区"),
              ("330110", "余杭区")),
        _city("330200", "宁波市", ("330203", "海曙区"), ("330212", "鄞州区")),
        _city("330300", "温州市", ("330302", "鹿城区"),),
        _city("330700", "金华市", ("330782", "义乌市"),),
    )),
    Province("34", "安徽省", 3.5, (
        _city("340100", "合肥市", ("340102", "瑶海区"), ("340103", "庐阳区"), ("340104", "蜀山区"),
              ("340111", "包河区")),
        _city("340200", "芜湖市", ("340202", "镜湖区"),),
    )),
    Province("35", "福建省", 3.8, (
        _city("350100", "福州市", ("350102", "鼓楼区"), ("350103", "台江区"), ("350104", "仓山区")),
        _city("350200", "厦门市", ("350203", "思明区"), ("350206", "湖里区")),
        _city("350500", "泉州市", ("350582", "晋江市"),),
    )),
    Province("36", "江西省", 2.3, (
        _city("360100", "南昌市", ("360102", "东湖区"), ("360103", "西湖区"),
              ("360111", "青山湖区")),
    )),
    Province("37", "山东省", 7.5, (
        _city("370100", "济南市", ("370102", "历下区"), ("370103", "市中区"), ("370105", "天桥区")),
        _city("370200", "青岛市", ("370202", "市南区"), ("370203", "市北区"), ("370211", "黄岛区")),
        _city("371300", "临沂市", ("371302", "兰山区"),),
    )),
    Province("41", "河南省", 4.5, (
        _city("410100", "郑州市", ("410102", "中原区"), ("410103", "二七区"), ("410105", "金水区")),
        _city("410300", "洛阳市", ("410302", "老城区"), ("410311", "洛龙区")),
    )),
    Province("42", "湖北省", 3.5, (
        _city("420100", "武汉市", ("420102", "江岸区"), ("420103", "江汉区"), ("420106", "武昌区"),
              ("420111", "洪山区")),
    )),
    Province("43", "湖南省", 3.0, (
        _city("430100", "长沙市", ("430102", "芙蓉区"), ("430103", "天心区"), ("430104", "岳麓区"),
              ("430105", "开福区")),
    )),
    Province("44", "广东省", 13.0, (
        _city("440100", "广州市", ("440103", "荔湾区"), ("440104", "越秀区"), ("440106", "天河区"),
              ("440113", "番禺区")),
        _city("440300", "深圳市", ("440303", "罗湖区"), ("440304", "福田区"), ("440305", "南山区"),
              ("440306", "宝安区"), ("440307", "龙岗区")),
        _city("440600", "佛山市", ("440604", "禅城区"), ("440606", "顺德区")),
    )),
    Province("45", "广西壮族自治区", 2.0, (
        _city("450100", "南宁市", ("450102", "兴宁区"), ("450103", "青秀区")),
        _city("450300", "桂林市", ("450302", "秀峰区"),),
    )),
    Province("46", "海南省", 1.0, (
        _city("460100", "海口市", ("460105", "秀英区"), ("460106", "龙华区"), ("460108", "美兰区")),
    )),
    Province("50", "重庆市", 2.6, (
        _city("500000", "重庆市", ("500103", "渝中区"), ("500105", "江北区"),
              ("500106", "沙坪坝区"), ("500112", "渝北区")),
    )),
    Province("51", "四川省", 4.5, (
        _city("510100", "成都市", ("510104", "锦江区"), ("510105", "青羊区"), ("510107", "武侯区"),
              ("510108", "成华区")),
    )),
    Province("52", "贵州省", 1.5, (
        _city("520100", "贵阳市", ("520102", "南明区"), ("520103", "云岩区")),
    )),
    Province("53", "云南省", 1.9, (
        _city("530100", "昆明市", ("530102", "五华区"), ("530103", "盘龙区"), ("530111", "官渡区")),
    )),
    Province("54", "西藏自治区", 0.2, (
        _city("540100", "拉萨市", ("540102", "城关区"),),
    )),
    Province("61", "陕西省", 2.3, (
        _city("610100", "西安市", ("610102", "新城区"), ("610103", "碑林区"), ("610104", "莲湖区"),
              ("610113", "雁塔区")),
    )),
    Province("62", "甘肃省", 0.9, (
        _city("620100", "兰州市", ("620102", "城关区"), ("620103", "七里河区")),
    )),
    Province("63", "青海省", 0.3, (
        _city("630100", "西宁市", ("630102", "城东区"), ("630103", "城中区")),
    )),
    Province("64", "宁夏回族自治区", 0.4, (
        _city("640100", "银川市", ("640104", "兴庆区"), ("640105", "西夏区")),
    )),
    Province("65", "新疆维吾尔自治区", 1.1, (
        _city("650100", "乌鲁木齐市", ("650102", "天山区"), ("650103", "沙依巴克区")),
    )),
)
# fmt: on
"""The 31 mainland province-level divisions. Weights ~ share of small-business borrowers."""

# fmt: off
STREET_NAMES: tuple[str, ...] = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "朝阳路", "长江路", "黄河路",
    "文化路", "胜利路", "青年路", "光明路", "友谊路", "工业大道", "科技路", "创业路", "幸福路",
    "东风路", "南京路", "北京路", "滨江路", "学府路", "花园路", "迎宾大道", "金融街", "世纪大道",
    "银河路", "红旗路", "复兴路",
)

RESIDENTIAL_WORDS: tuple[str, ...] = (
    "阳光花园", "锦绣家园", "翠苑小区", "金色家园", "幸福里", "东方明珠苑", "碧水湾", "绿洲小区",
    "星河湾", "丽景苑", "华府", "水岸新城",
)
# fmt: on

# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

# fmt: off
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.6), ("杨", 3.1), ("黄", 2.4),
    ("赵", 2.3), ("吴", 2.0), ("周", 1.9), ("徐", 1.5), ("孙", 1.5), ("马", 1.4), ("朱", 1.3),
    ("胡", 1.3), ("郭", 1.1), ("何", 1.1), ("林", 1.0), ("高", 1.0), ("罗", 1.0), ("郑", 0.9),
    ("梁", 0.9), ("谢", 0.8), ("宋", 0.7), ("唐", 0.7), ("许", 0.7), ("韩", 0.6), ("冯", 0.6),
    ("邓", 0.6), ("曹", 0.6), ("彭", 0.6), ("曾", 0.6), ("肖", 0.6), ("田", 0.5), ("董", 0.5),
    ("潘", 0.5), ("袁", 0.5), ("蔡", 0.5), ("蒋", 0.5), ("余", 0.5), ("于", 0.5), ("杜", 0.5),
    ("叶", 0.5), ("程", 0.5), ("魏", 0.4), ("苏", 0.4), ("吕", 0.4), ("丁", 0.4), ("任", 0.4),
    ("卢", 0.4), ("姚", 0.4), ("沈", 0.4), ("钟", 0.4), ("姜", 0.4), ("崔", 0.4), ("谭", 0.4),
    ("陆", 0.3), ("范", 0.3), ("汪", 0.3), ("廖", 0.3), ("石", 0.3), ("金", 0.3), ("韦", 0.3),
    ("贾", 0.3), ("夏", 0.3), ("付", 0.3), ("方", 0.3), ("邹", 0.3), ("熊", 0.3), ("白", 0.3),
    ("孟", 0.3), ("秦", 0.3), ("邱", 0.3), ("侯", 0.3), ("江", 0.3), ("尹", 0.2), ("薛", 0.2),
    ("闫", 0.2), ("段", 0.2), ("雷", 0.2), ("龙", 0.2), ("黎", 0.2), ("史", 0.2), ("陶", 0.2),
    ("贺", 0.2), ("毛", 0.2), ("郝", 0.2), ("顾", 0.2), ("龚", 0.2), ("邵", 0.2), ("万", 0.2),
    ("覃", 0.2), ("武", 0.2), ("钱", 0.2), ("戴", 0.2), ("严", 0.2), ("欧阳", 0.05),
    ("司马", 0.01), ("诸葛", 0.01),
)
# fmt: on
"""Common surnames with rough relative frequencies (largest first)."""

GIVEN_NAME_CHARS_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳建国东文志海"
GIVEN_NAME_CHARS_FEMALE = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红玉兰琳雪婷倩颖慧晶洁佳嘉欣怡梅莉薇蕾"
GIVEN_NAME_CHARS_NEUTRAL = "子思一晨雨梓诗安心文博乐悦可宁春秋晓新"

TRADE_NAME_CHARS = (
    "华鑫盛恒达隆兴泰丰源宏瑞祥富诚信和嘉德利金创博新佳优立海天明通顺聚汇锦茂昌永安美凯宇腾辰星"
    "卓智远鸿益禾润众合力豪晟"
)
"""Characters that make up a 字号 (trade name): auspicious and commercial."""

# --------------------------------------------------------------------------------------
# Phones, cards, networks
# --------------------------------------------------------------------------------------

# fmt: off
MOBILE_PREFIXES: tuple[tuple[str, float], ...] = (
    ("134", 2.0), ("135", 3.0), ("136", 3.0), ("137", 3.0), ("138", 3.5), ("139", 3.5),
    ("150", 2.0), ("151", 2.0), ("152", 2.0), ("157", 1.0), ("158", 2.0), ("159", 2.0),
    ("182", 1.5), ("183", 1.5), ("187", 1.5), ("188", 1.5), ("147", 0.5), ("178", 0.8),
    ("198", 0.8), ("130", 1.5), ("131", 1.5), ("132", 1.5), ("155", 1.0), ("156", 1.5),
    ("185", 1.5), ("186", 2.0), ("166", 0.8), ("175", 0.5), ("176", 0.8), ("133", 1.5),
    ("153", 1.0), ("177", 0.8), ("180", 1.5), ("181", 1.2), ("189", 1.8), ("199", 0.8),
    ("191", 0.5), ("173", 0.5),
)
# fmt: on
"""Three-digit mobile prefixes of the three big carriers, with rough relative frequencies."""

VIRTUAL_OPERATOR_PREFIXES: tuple[str, ...] = ("170", "171", "162", "165", "167")
"""Mobile virtual network operator ranges: cheap, anonymous, over-represented in fraud."""


@dataclass(frozen=True, slots=True)
class CardBin:
    prefix: str
    bank: str
    length: int
    weight: float


CARD_BINS: tuple[CardBin, ...] = (
    CardBin("622202", "中国工商银行", 19, 5.0),
    CardBin("621700", "中国建设银行", 19, 4.0),
    CardBin("622700", "中国建设银行", 19, 1.0),
    CardBin("622848", "中国农业银行", 19, 4.5),
    CardBin("621661", "中国银行", 19, 3.0),
    CardBin("622262", "交通银行", 19, 1.5),
    CardBin("622588", "招商银行", 16, 2.5),
    CardBin("621799", "中国邮政储蓄银行", 19, 2.0),
    CardBin("623058", "平安银行", 19, 1.0),
    CardBin("622908", "兴业银行", 18, 1.0),
)
"""Debit-card issuer prefixes that look like real mainland BINs (from memory, unverified)."""

# fmt: off
CHINA_IPV4_FIRST_OCTETS: tuple[int, ...] = (
    36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
    120, 121, 122, 123, 124, 125, 180, 182, 183, 202, 210, 211, 218, 219, 220, 221, 222, 223,
)
# fmt: on
"""First octets of blocks allocated to mainland networks, so addresses look domestic."""

# --------------------------------------------------------------------------------------
# Loans
# --------------------------------------------------------------------------------------

TERM_MONTHS: tuple[tuple[int, float], ...] = ((6, 0.15), (12, 0.5), (24, 0.25), (36, 0.1))
REPAYMENT_METHODS: tuple[tuple[str, float], ...] = (
    ("equal_installment", 0.5),
    ("equal_principal", 0.15),
    ("interest_first", 0.35),
)
# fmt: off
PURPOSES: tuple[str, ...] = (
    "采购原材料", "补充流动资金", "支付货款", "购置设备", "店铺装修", "支付员工工资", "备货",
    "支付房租",
)
# fmt: on

TAX_GRADES: tuple[str, ...] = ("A", "B", "M", "C", "D")
"""纳税信用级别. M is for new enterprises without a full year of tax history."""

TAX_GRADE_SHARES_ESTABLISHED: tuple[float, ...] = (0.15, 0.66, 0.08, 0.06, 0.05)
"""Rough shares among enterprises past their first year (A/B/M/C/D)."""

TAX_GRADE_RISK: dict[str, float] = {"A": -1.1, "B": -0.2, "M": 0.4, "C": 1.0, "D": 1.8}
"""Additive log-odds of default by tax credit grade."""
