// Russian names for the API's enums, and how money, dates and times are shown.

export const LABELS = {
  role: { OWNER: "владелец", ADMIN: "администратор", ACCOUNTANT: "бухгалтер", USER: "пользователь" },
  document: { INVOICE: "Счёт на оплату", ACT: "Акт оказанных услуг", CONTRACT: "Договор" },
  category: {
    LOCAL_1C: "Программы 1С", CLOUD_RENTAL: "Аренда 1С в облаке", PARTNER_PRODUCT: "Партнёрские решения",
    SERVICE: "Сервисы", LICENSE: "Лицензии", MODULE: "Модули",
  },
  contract: { ITS: "ИТС", PTS: "ПТС", CLOUD_RENTAL: "Аренда в облаке", SERVICE: "Сопровождение" },
  contractStatus: { ACTIVE: "действует", EXPIRING: "истекает", EXPIRED: "истёк" },
  mode: { DISABLED: "не обновлять", ONCE: "однократно", MONTHLY: "ежемесячно", ON_RELEASE: "при выходе релиза" },
  run: {
    QUARANTINE: "карантин", SCHEDULED: "запланировано", RUNNING: "выполняется", SUCCEEDED: "выполнено",
    FAILED: "ошибка", CANCELLED: "отменено", SKIPPED: "пропущено",
  },
  session: { ACTIVE: "активен", TERMINATING: "завершается", ENDED: "завершён", TERMINATED: "прерван" },
  client: { RDP: "RDP", THIN_CLIENT: "тонкий клиент", WEB_CLIENT: "веб-клиент", MOBILE: "мобильный" },
};

export const label = (kind, value) => LABELS[kind][value] ?? value;

export function money(amount, currency = "RUB") {
  return new Intl.NumberFormat("ru-RU", { style: "currency", currency }).format(Number(amount));
}

export function number(decimal) {
  return Number(decimal).toLocaleString("ru-RU", { maximumFractionDigits: 2 });
}

export function day(isoDate) {
  return isoDate ? new Date(`${isoDate}T00:00:00`).toLocaleDateString("ru-RU") : "—";
}

export function moment(isoDateTime) {
  return isoDateTime ? new Date(isoDateTime).toLocaleString("ru-RU", { dateStyle: "short", timeStyle: "short" }) : "—";
}

// «N дней» with the right Russian plural.
export function days(n) {
  const tens = n % 100, ones = n % 10;
  const word = tens >= 11 && tens <= 14 ? "дней" : ones === 1 ? "день" : ones >= 2 && ones <= 4 ? "дня" : "дней";
  return `${n} ${word}`;
}

export function schedule(s) {
  if (s.mode === "ONCE") return `однократно, ${moment(s.runAt)}`;
  if (s.mode === "MONTHLY") return `ежемесячно, ${s.dayOfMonth}-го числа в ${s.timeOfDay} (${s.timezone})`;
  if (s.mode === "ON_RELEASE") return `при выходе релиза, в ${s.timeOfDay} (${s.timezone})`;
  return label("mode", s.mode);
}
